"""The generic route: a manifest naming each scene's image, point cloud and per-point labels.

    <root>/manifest.csv (or manifest.parquet)   scene_id,image,points,labels,split (manifest.py)
    points: .npy (N, 4) x, y, z, intensity | .ply | .pcd     labels: .npy (N,) 0/1, one per point
The split is the manifest's own. The same point or image file in two splits is a leak (the
same scene would be trained on and scored). Labels are index-aligned with the points.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from tasks.anomaly import scene_files
from tasks.anomaly.layouts.base import FrameFiles, LayoutScan
from tasks.anomaly.manifest import CSV_MANIFEST, PARQUET_MANIFEST, manifest_path, read_manifest
from tasks.base import DataError


def shared_files(frames: list[FrameFiles]) -> list[str]:
    """One leak line per image or point file listed under more than one split."""
    leaks = []
    for kind in ("image", "points"):
        splits_of: dict[Path, set[str]] = defaultdict(set)
        for frame in frames:
            splits_of[getattr(frame, kind)].add(frame.split)
        for path, splits in sorted(splits_of.items()):
            if len(splits) > 1:
                leaks.append(
                    f"{path}: the same {kind} file is in the {' and '.join(sorted(splits))} splits; "
                    "give each scene one split"
                )
    return leaks


class SceneManifestLayout:
    """Reader of a scene manifest (see the module docstring)."""

    name = "scene manifest (manifest.csv or manifest.parquet)"
    unit = "scenes"

    def recognises(self, root: Path) -> bool:
        return any((Path(root) / name).is_file() for name in (CSV_MANIFEST, PARQUET_MANIFEST))

    def scan(self, root: Path) -> LayoutScan:
        try:
            entries = read_manifest(root)
        except DataError as error:
            return LayoutScan(problems=[str(error)])
        frames = [
            FrameFiles(sample_id=entry.scene_id, scenario=entry.scene_id, split=entry.split,
                       image=entry.image, points=entry.points, labels=entry.labels)
            for entry in entries
        ]
        sources = [
            f"scenes and splits from {manifest_path(Path(root)).name}; labels index-aligned with the points"
        ]
        return LayoutScan(frames=frames, sources=sources, leaks=shared_files(frames))

    def check_frame(self, frame: FrameFiles) -> None:
        points = scene_files.point_count(frame.points, frame.sample_id)
        labels = scene_files.label_count(frame.labels, frame.sample_id)
        if points != labels:
            raise DataError(
                f"{frame.labels}: scene {frame.sample_id} has {labels} labels for {points} points in "
                f"{frame.points.name}; write one label per point"
            )
        scene_files.check_image(frame.image, frame.sample_id)

    def read_points(self, frame: FrameFiles) -> np.ndarray:
        return scene_files.read_points(frame.points, frame.sample_id)

    def read_point_labels(self, frame: FrameFiles, points: np.ndarray) -> np.ndarray:
        labels = scene_files.read_point_labels(frame.labels, frame.sample_id)
        if len(labels) != len(points):
            raise DataError(
                f"{frame.labels}: scene {frame.sample_id} has {len(labels)} labels for "
                f"{len(points)} points; write one label per point"
            )
        return labels
