"""Reading one manifest scene's files: the point cloud (.npy, .ply or .pcd), its per-point
labels, its image.

Each reader raises DataError with one line naming the file, the problem and the fix. The
`*_count` functions are the cheap checks `check_data` runs: they read headers (the .npy header
through a memory map, which also proves the file holds all the bytes its header announces; the
PLY / PCD header and, for binary bodies, the file size), never the whole array. Point files
pass the label guards of input_guard.py (a semantic scan is never accepted as points).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tasks.base import DataError
from tasks.anomaly.input_guard import (
    GUARD_SAMPLE_ROWS,
    refuse_label_image_path,
    refuse_semantic_path,
    refuse_tag_column,
)
from tasks.anomaly.pcd_scans import check_pcd_lidar_scan, read_pcd_lidar_points
from tasks.anomaly.ply import PlyError, check_ply_size, read_ply_header, read_ply_points
from tasks.common.image_check import image_problem
from tasks.common.image_loading import load_image_uint8

POINT_SUFFIXES = (".npy", ".ply", ".pcd")
POINT_COLUMNS = 4  # x, y, z, intensity


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _require_file(path: Path, what: str, scene_id: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: {what} file of scene {scene_id} is missing; add it or fix the manifest")


def _open_npy(path: Path, what: str, scene_id: str) -> np.ndarray:
    """The .npy array memory-mapped (header and size checked, data not read)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # numpy raises ValueError/OSError/EOFError for bad files
        raise DataError(
            f"{path}: {what} file of scene {scene_id} is truncated or not a .npy array "
            f"({first_line(error)}); re-export it"
        ) from None


def point_count(path: Path, scene_id: str) -> int:
    """Number of points of a .npy (N x 4), .ply or .pcd point cloud, from its header (cheap),
    after the label guards (on the first rows of a .npy)."""
    _require_file(path, "point cloud", scene_id)
    refuse_semantic_path(path)
    if path.suffix.lower() == ".npy":
        array = _open_npy(path, "point cloud", scene_id)
        if array.ndim != 2 or array.shape[1] != POINT_COLUMNS:
            raise DataError(
                f"{path}: point cloud of scene {scene_id} has shape {array.shape}, expected "
                f"(N, {POINT_COLUMNS}) x, y, z, intensity; re-export it"
            )
        count = array.shape[0]
        refuse_tag_column(np.asarray(array[:GUARD_SAMPLE_ROWS, 3]), path)
    elif path.suffix.lower() == ".pcd":
        count = check_pcd_lidar_scan(path)
    elif path.suffix.lower() == ".ply":
        try:
            header = read_ply_header(path)
            check_ply_size(path, header)
        except PlyError as error:
            raise DataError(f"{path}: point cloud of scene {scene_id}: {error}; re-export it") from None
        count = header.vertex_count
    else:
        raise DataError(
            f"{path}: point cloud of scene {scene_id} has suffix {path.suffix!r}; use .npy, .ply or .pcd"
        )
    if count == 0:
        raise DataError(f"{path}: point cloud of scene {scene_id} has no points; re-export or drop the scene")
    return count


def label_count(path: Path, scene_id: str) -> int:
    """Number of per-point labels in a .npy label file, from its header (cheap)."""
    _require_file(path, "label", scene_id)
    if path.suffix.lower() != ".npy":
        raise DataError(f"{path}: label file of scene {scene_id} must be a .npy array of 0/1 per point")
    array = _open_npy(path, "label", scene_id)
    if array.ndim != 1:
        raise DataError(
            f"{path}: label file of scene {scene_id} has shape {array.shape}, expected (N,) "
            "one 0/1 label per point; re-export it"
        )
    if array.shape[0] == 0:
        raise DataError(
            f"{path}: label file of scene {scene_id} is empty, so its scene label is unknown; "
            "add the per-point labels or drop the scene from the manifest"
        )
    return array.shape[0]


def check_image(path: Path, scene_id: str) -> None:
    """The image exists, its header parses and its end marker is there (tasks/common/image_check.py)."""
    _require_file(path, "image", scene_id)
    refuse_label_image_path(path)
    problem = image_problem(path)
    if problem:
        raise DataError(f"{path}: image of scene {scene_id} {problem}; replace it")


def read_points(path: Path, scene_id: str) -> np.ndarray:
    """The scene's points as (N, 4) float32: x, y, z, intensity."""
    point_count(path, scene_id)  # existence, place, suffix, header and size
    if path.suffix.lower() == ".pcd":
        return read_pcd_lidar_points(path)
    try:
        if path.suffix.lower() == ".npy":
            points = np.load(path, allow_pickle=False).astype(np.float32)
        else:
            points = read_ply_points(path)
    except (PlyError, ValueError, OSError, EOFError) as error:
        raise DataError(
            f"{path}: point cloud of scene {scene_id} is unreadable ({first_line(error)}); re-export it"
        ) from None
    if not np.isfinite(points).all():
        raise DataError(f"{path}: point cloud of scene {scene_id} holds NaN or Inf; clean it")
    refuse_tag_column(points[:, 3], path)
    return points


def read_point_labels(path: Path, scene_id: str) -> np.ndarray:
    """The scene's per-point labels as (N,) bool; values must be 0 or 1."""
    label_count(path, scene_id)
    try:
        labels = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(
            f"{path}: label file of scene {scene_id} is unreadable ({first_line(error)}); re-export it"
        ) from None
    if labels.dtype.kind not in "biuf" or not np.isin(labels, (0, 1)).all():
        raise DataError(
            f"{path}: label file of scene {scene_id} holds values other than 0 and 1; "
            "labels are 1 for anomalous points, 0 otherwise"
        )
    return labels.astype(bool)


def read_image(path: Path, scene_id: str, image_size: int) -> torch.Tensor:
    """The scene's image as a (3, image_size, image_size) uint8 tensor."""
    _require_file(path, "image", scene_id)
    refuse_label_image_path(path)
    try:
        return load_image_uint8(path, image_size)
    except Exception as error:  # PIL raises several types for corrupt files
        raise DataError(
            f"{path}: image of scene {scene_id} cannot be decoded ({first_line(error)}); replace it"
        ) from None
