"""The anomaly task's data: layouts read through one interface, the scene-label rule, tensors.

Layouts (tasks/anomaly/layouts/): AnoVox as released, AnoVox as its generator writes it, and a
scene manifest; detection.py picks one. Each sample is a frame (AnoVox) or a scene (manifest):
one camera image, one LiDAR point cloud (x, y, z, intensity: the model's only point input) and
per-point anomaly labels for that cloud. AnoVox is split by scenario (scenario_split.py), a
manifest by its split column.

Scene label rule: a sample is anomalous (label 1) iff at least `min_anomalous_points` of its
points are labelled anomalous, counted over the whole cloud as stored (before sampling). A
sample whose labels are missing or empty has no label: DataError naming it, never a guess.

Batching: point counts vary, so each cloud is brought to exactly `num_points` points: a cloud
with more is subsampled without replacement, one with fewer is kept whole and padded with
zeros, and a mask marks the real points. The subsample is drawn from a generator seeded by the
sample id (crc32), so a sample gets the same points in every trial, epoch and evaluation.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.anomaly import scene_files
from tasks.anomaly.layouts.base import SPLITS, FrameFiles, Layout
from tasks.anomaly.layouts.detection import detect_layout
from tasks.base import DataError, DataReport
from tasks.common.data_problems import ProblemList

REQUIRED_SPLITS = ("train", "val")
POINT_COLUMNS = ("x", "y", "z", "intensity")


@dataclass
class AnomalySplit:
    """One split as loaded, every tensor indexed by sample in the layout's order.

    images: (S, 3, H, W) uint8; points: (S, num_points, 4) float32; point_mask: (S, num_points)
    bool, True for real points; scene_labels: (S,) float32 0/1 by the scene-label rule;
    anomalous_point_counts: (S,) long, the labelled anomalous points of each whole cloud.
    """

    scene_ids: list[str]
    images: torch.Tensor
    points: torch.Tensor
    point_mask: torch.Tensor
    scene_labels: torch.Tensor
    anomalous_point_counts: torch.Tensor

    def __len__(self) -> int:
        return len(self.scene_ids)


def scene_label(point_labels: np.ndarray, min_anomalous_points: int) -> int:
    """1 iff at least `min_anomalous_points` entries of the per-point labels are 1, else 0."""
    return int(int(np.count_nonzero(point_labels)) >= min_anomalous_points)


def scene_sampling_seed(scene_id: str) -> int:
    """The seed of a scene's point subsample: crc32 of its id (stable across runs and machines)."""
    return zlib.crc32(scene_id.encode("utf-8"))


def fixed_size_points(
    points: np.ndarray, num_points: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bring an (N, 4) cloud to exactly num_points rows.

    N > num_points: a subsample without replacement, drawn with `seed` (kept in original
    order); N <= num_points: all points, then zero rows. Returns (points (num_points, 4)
    float32, mask (num_points,) bool with True for real points).
    """
    count = len(points)
    fixed = np.zeros((num_points, points.shape[1]), dtype=np.float32)
    mask = np.zeros(num_points, dtype=bool)
    if count > num_points:
        chosen = np.sort(np.random.default_rng(seed).choice(count, num_points, replace=False))
        fixed[:] = points[chosen]
        mask[:] = True
    else:
        fixed[:count] = points
        mask[:count] = True
    return fixed, mask


def check_data(data_dir: Path) -> DataReport:
    """Inspect data_dir without loading any point or pixel: the layout detected, samples per
    split, what the reader chose (sources) and every problem (see tasks.base.DataReport)."""
    data_dir = Path(data_dir)
    try:
        layout, root, notes = detect_layout(data_dir)
    except DataError as error:
        return DataReport(layout="not recognised", problems=[str(error)])
    scan = layout.scan(root)
    problems = ProblemList()
    problems.lines.extend(scan.problems)
    for frame in scan.frames:
        with problems.collecting():
            layout.check_frame(frame)
    counts = {split: sum(frame.split == split for frame in scan.frames) for split in SPLITS}
    for split in REQUIRED_SPLITS:
        if scan.frames and not counts[split]:
            problems.add(_empty_split(root, layout, split))
    return DataReport(
        layout=layout.name, splits=counts, unit=layout.unit, sources=notes + scan.sources,
        problems=problems.lines, leaks=scan.leaks,
    )


def _empty_split(root: Path, layout: Layout, split: str) -> str:
    if layout.unit == "scenes":
        return f"{root}: no scene has split {split}; assign some scenes to {split} in the manifest"
    return (
        f"{root}: no scenario with frames falls in split {split} (see the split rule in the sources); "
        "add scenarios"
    )


def split_frames(data_dir: Path, split: str) -> tuple[Layout, list[FrameFiles]]:
    """The layout reader and the frames of one split; DataError on any problem of the listing."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    layout, root, _ = detect_layout(Path(data_dir))
    scan = layout.scan(root)
    if scan.problems:
        more = len(scan.problems) - 1
        raise DataError(scan.problems[0] + (f" (and {more} more problems)" if more else ""))
    frames = [frame for frame in scan.frames if frame.split == split]
    if not frames:
        raise DataError(_empty_split(root, layout, split))
    return layout, frames


def load_split(
    data_dir: Path,
    split: str,
    image_size: int,
    num_points: int,
    min_anomalous_points: int,
    max_samples: int | None = None,
) -> AnomalySplit:
    """Read every sample of a split into tensors (see AnomalySplit), or only its first
    `max_samples` in the split's order when given; DataError on bad files.

    The points tensor holds exactly the columns x, y, z, intensity that the layout's
    read_points returns; labels only ever reach scene_labels and anomalous_point_counts.
    """
    layout, frames = split_frames(data_dir, split)
    frames = frames[:max_samples]
    count = len(frames)
    images = torch.empty((count, 3, image_size, image_size), dtype=torch.uint8)
    points = np.zeros((count, num_points, len(POINT_COLUMNS)), dtype=np.float32)
    mask = np.zeros((count, num_points), dtype=bool)
    labels = np.zeros(count, dtype=np.float32)
    anomalous_counts = np.zeros(count, dtype=np.int64)
    for index, frame in enumerate(frames):
        cloud = layout.read_points(frame)
        if cloud.ndim != 2 or cloud.shape[1] != len(POINT_COLUMNS):  # a reader's contract, not data
            raise ValueError(f"{type(layout).__name__}.read_points gave shape {cloud.shape}, not (N, 4)")
        point_labels = layout.read_point_labels(frame, cloud)
        seed = scene_sampling_seed(frame.sample_id)
        points[index], mask[index] = fixed_size_points(cloud, num_points, seed)
        labels[index] = scene_label(point_labels, min_anomalous_points)
        anomalous_counts[index] = int(np.count_nonzero(point_labels))
        images[index] = scene_files.read_image(frame.image, frame.sample_id, image_size)
    return AnomalySplit(
        scene_ids=[frame.sample_id for frame in frames],
        images=images,
        points=torch.from_numpy(points),
        point_mask=torch.from_numpy(mask),
        scene_labels=torch.from_numpy(labels),
        anomalous_point_counts=torch.from_numpy(anomalous_counts),
    )
