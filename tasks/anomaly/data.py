"""The AnoVox-like on-disk layout, the scene-label rule, and loading a split into tensors.

Layout under data_dir (paths inside are whatever the manifest says; the demo uses these):
    manifest.csv (or manifest.parquet)   scene_id,image,points,labels,split  (see manifest.py)
    images/<scene>.png|jpg                the camera image
    points/<scene>.npy                    (N, 4) float: x, y, z, intensity
      or points/<scene>.ply               ASCII or binary PLY, vertex x y z [intensity] (see ply.py)
    labels/<scene>.npy                    (N,) ints 0/1: 1 = the point belongs to an anomaly
Labels are per point, one per point of the cloud, in the same order. (AnoVox also ships
per-voxel labels; that variant is not read here: convert voxel labels to per-point labels first.)

Scene label rule: a scene is anomalous (label 1) iff at least `min_anomalous_points` of its
points are labelled anomalous, counted over the whole cloud as stored (before sampling). A scene
whose label file is missing or empty has no label: DataError naming the scene, never a guess.

Batching: point counts vary per scene, so each cloud is brought to exactly `num_points` points:
a cloud with more is subsampled without replacement, one with fewer is kept whole and padded
with zeros, and a mask marks the real points. The subsample is drawn from a generator seeded
by the scene id (crc32), so a scene gets the same points in every trial, epoch and evaluation.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.base import DataError
from tasks.anomaly import scene_files
from tasks.anomaly.manifest import SPLITS, SceneEntry, manifest_path, read_manifest

REQUIRED_SPLITS = ("train", "val")


@dataclass
class AnomalySplit:
    """One split as loaded, every tensor indexed by scene in manifest order.

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


def check_scene(entry: SceneEntry) -> None:
    """Cheap checks of one scene: files exist, headers intact, one label per point."""
    points = scene_files.point_count(entry.points, entry.scene_id)
    labels = scene_files.label_count(entry.labels, entry.scene_id)
    if points != labels:
        raise DataError(
            f"{entry.labels}: scene {entry.scene_id} has {labels} labels for {points} points in "
            f"{entry.points.name}; write one label per point"
        )
    scene_files.check_image(entry.image, entry.scene_id)


def check_data(data_dir: Path) -> None:
    """Cheap checks of the whole layout; raises DataError (one line) on the first problem.

    The manifest must be readable and list train and val scenes; every scene's files must exist
    with intact headers and as many labels as points. No point or pixel data is decoded.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        raise DataError(
            f"{data_dir}: missing or empty; put an AnoVox-layout dataset there (manifest.csv, "
            "images, points, labels) or write the demo with `orchestrate data --task anomaly`"
        )
    entries = read_manifest(data_dir)
    for split in REQUIRED_SPLITS:
        if not any(entry.split == split for entry in entries):
            raise DataError(
                f"{manifest_path(data_dir)}: no scene has split {split}; assign some scenes to {split}"
            )
    for entry in entries:
        check_scene(entry)


def load_split(
    data_dir: Path, split: str, image_size: int, num_points: int, min_anomalous_points: int
) -> AnomalySplit:
    """Read every scene of a split into tensors (see AnomalySplit); DataError on bad files."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    entries = [entry for entry in read_manifest(Path(data_dir)) if entry.split == split]
    if not entries:
        raise DataError(
            f"{manifest_path(Path(data_dir))}: no scene has split {split}; assign some scenes to it"
        )
    count = len(entries)
    images = torch.empty((count, 3, image_size, image_size), dtype=torch.uint8)
    points = np.zeros((count, num_points, scene_files.POINT_COLUMNS), dtype=np.float32)
    mask = np.zeros((count, num_points), dtype=bool)
    labels = np.zeros(count, dtype=np.float32)
    anomalous_counts = np.zeros(count, dtype=np.int64)
    for index, entry in enumerate(entries):
        cloud = scene_files.read_points(entry.points, entry.scene_id)
        point_labels = scene_files.read_point_labels(entry.labels, entry.scene_id)
        if len(point_labels) != len(cloud):
            raise DataError(
                f"{entry.labels}: scene {entry.scene_id} has {len(point_labels)} labels for "
                f"{len(cloud)} points; write one label per point"
            )
        points[index], mask[index] = fixed_size_points(
            cloud, num_points, scene_sampling_seed(entry.scene_id)
        )
        labels[index] = scene_label(point_labels, min_anomalous_points)
        anomalous_counts[index] = int(np.count_nonzero(point_labels))
        images[index] = scene_files.read_image(entry.image, entry.scene_id, image_size)
    return AnomalySplit(
        scene_ids=[entry.scene_id for entry in entries],
        images=images,
        points=torch.from_numpy(points),
        point_mask=torch.from_numpy(mask),
        scene_labels=torch.from_numpy(labels),
        anomalous_point_counts=torch.from_numpy(anomalous_counts),
    )
