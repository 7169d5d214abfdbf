"""What every dataset layout reader provides, and the frame record they share.

A layout reader turns a directory into frames (one camera image, one LiDAR scan, and where the
labels of that scan are), assigned to train / val / test, and reads one frame's points and
per-point anomaly labels. `scan` is cheap (directory listings, no file opened); `check_frame`
reads headers only; `read_points` / `read_point_labels` read the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FrameFiles:
    """One sample: sample_id (unique, seeds its point subsample), the scenario it belongs to,
    its split, and its files (labels: the semantic scan or the per-point label file)."""

    sample_id: str
    scenario: str
    split: str
    image: Path
    points: Path
    labels: Path


@dataclass
class LayoutScan:
    """What a layout found: its frames, the choices it made (sources), what is wrong."""

    frames: list[FrameFiles] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)


class Layout(Protocol):
    """A reader of one on-disk layout (one module per layout)."""

    name: str  # the phrase a user knows the layout by
    unit: str  # what one sample is called in reports ("frames", "scenes")

    def recognises(self, root: Path) -> bool:
        """Whether root looks like this layout (cheap: names of entries only)."""

    def scan(self, root: Path) -> LayoutScan:
        """Every frame with its split, every problem of the listing (no file opened)."""

    def check_frame(self, frame: FrameFiles) -> None:
        """Cheap checks of one frame's files (headers, sizes); DataError naming the file."""

    def read_points(self, frame: FrameFiles) -> np.ndarray:
        """(N, 4) float32 x, y, z, intensity: the model's input, never a label."""

    def read_point_labels(self, frame: FrameFiles, points: np.ndarray) -> np.ndarray:
        """(N,) bool anomalous, one per row of `points` (from read_points)."""
