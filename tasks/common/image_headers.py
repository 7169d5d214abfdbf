"""Checking that image files open, cheaply: the header is read, no pixel is decoded."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unreadable_image_reason(path: Path) -> str | None:
    """None when `path` opens as an image (format and size readable); else why not, in a few
    words ("no such file", or the decoder's first line). A file whose pixels are cut off after
    an intact header passes: that shows only when it is decoded."""
    if not path.is_file():
        return "no such file"
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - the header is parsed by open; size proves it was understood
    except Exception as error:  # PIL raises several types for unreadable files
        return first_line(error)
    return None
