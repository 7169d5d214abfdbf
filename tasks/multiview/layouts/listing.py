"""Directory listing shared by the layout readers: sorted, hidden entries left out."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tasks.common.local_weights import PRETRAINED_DIR

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_DIGITS = re.compile(r"(\d+)")


def subdirectories(path: Path) -> list[Path]:
    """The visible subdirectories of path, sorted by name; [] when path is not a directory."""
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [Path(entry.path) for entry in entries if entry.is_dir() and not entry.name.startswith(".")]


def dataset_folders(root: Path) -> list[Path]:
    """The visible subdirectories of a dataset's root, less its `pretrained/` folder of local
    weights (tasks/common/local_weights.py), which belongs to no class."""
    return [path for path in subdirectories(root) if path.name != PRETRAINED_DIR]


def file_names(path: Path) -> list[str]:
    """Names of the visible files directly in path, sorted; [] when path is not a directory."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(entry.name for entry in entries if entry.is_file() and not entry.name.startswith("."))


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def natural_key(name: str) -> tuple:
    """Sort key putting frame 9 before frame 10 whatever the zero padding."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))
