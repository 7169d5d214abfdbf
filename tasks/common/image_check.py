"""A cheap check that an image file is whole: its header parses and its end marker is there.

Decoding (or PIL's verify, which reads every chunk) costs the whole file; a dataset check over
hundreds of thousands of frames reads only the header (PIL identifies format and size from the
first bytes) and the file's last bytes: a PNG ends with its IEND chunk, a JPEG with the EOI
marker FF D9 (some writers pad after it, so the last kilobyte is searched). A download cut short
loses exactly those bytes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

PNG_END = b"IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"
JPEG_TAIL_BYTES = 1024


def image_problem(path: Path) -> str | None:
    """None for a whole image file, else a phrase saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        return "is missing"
    try:
        with Image.open(path) as image:
            image_format = image.format
    except Exception as error:  # PIL raises several types for files it cannot identify
        text = str(error).strip().splitlines()
        return f"is not a readable image ({text[0] if text else type(error).__name__})"
    size = path.stat().st_size
    with path.open("rb") as file:
        file.seek(max(0, size - JPEG_TAIL_BYTES))
        tail = file.read()
    if image_format == "PNG" and not tail.endswith(PNG_END):
        return "is truncated (the PNG's IEND chunk is missing)"
    if image_format == "JPEG" and JPEG_END not in tail:
        return "is truncated (the JPEG's end marker is missing)"
    return None
