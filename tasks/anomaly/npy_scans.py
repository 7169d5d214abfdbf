"""The AnoVox generator's .npy scans (DataAnalysis/DataGenerator.py writes them with np.save).

- LIDAR(...)/*.npy: N x 4 float32, columns x, -y, z, intensity. The generator negates CARLA's y
  ("for correct open3d coordinate system"), which turns CARLA's left-handed sensor frame
  (x forward, y right, z up) into the right-handed one (x forward, y left, z up); the columns are
  read as they are, the same frame as the released .pcd files.
- SEMANTIC-LIDAR(...)/*.npy: N x 4, columns x, -y, z, semantic tag (float64 on disk, because
  np.concatenate joins float32 points with uint32 tags); tags as in anovox_labels.py.
Readers raise DataError naming the file; `npy_scan_count` is the cheap header check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.anomaly.anovox_labels import UnknownLabel, anomalous_tags
from tasks.anomaly.input_guard import GUARD_SAMPLE_ROWS, refuse_semantic_path, refuse_tag_column
from tasks.base import DataError

SCAN_COLUMNS = 4


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _open(path: Path, what: str, mmap: bool) -> np.ndarray:
    if not Path(path).is_file():
        raise DataError(f"{path}: {what} is missing; restore the file or remove the frame")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as error:  # numpy raises ValueError/OSError/EOFError for bad files
        raise DataError(
            f"{path}: {what} is truncated or not a .npy array ({_first_line(error)}); re-export it"
        ) from None
    if array.ndim != 2 or array.shape[1] != SCAN_COLUMNS or array.dtype.kind not in "fiu":
        raise DataError(
            f"{path}: {what} has shape {array.shape} of {array.dtype}, expected (N, {SCAN_COLUMNS}) numbers"
        )
    if array.shape[0] == 0:
        raise DataError(f"{path}: {what} holds no points; re-export it or remove the frame")
    return array


def npy_scan_count(path: Path, what: str, is_lidar: bool) -> int:
    """Rows of a scan from its header (memory-mapped); for a LiDAR scan, also the label guard
    on the first GUARD_SAMPLE_ROWS rows of its 4th column."""
    array = _open(path, what, mmap=True)
    if is_lidar:
        refuse_semantic_path(path)
        refuse_tag_column(np.asarray(array[:GUARD_SAMPLE_ROWS, 3]), path)
    return array.shape[0]


def read_npy_lidar_points(path: Path) -> np.ndarray:
    """(N, 4) float32 x, y, z, intensity of a LIDAR(...) scan, after the label guards."""
    refuse_semantic_path(path)
    points = np.asarray(_open(path, "LiDAR scan", mmap=False), dtype=np.float32)
    if not np.isfinite(points).all():
        raise DataError(f"{path}: LiDAR scan holds NaN or Inf; clean the file")
    refuse_tag_column(points[:, 3], path)
    return points


def read_npy_semantic_scan(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) float32 x, y, z and (M,) bool anomalous, of a SEMANTIC-LIDAR(...) scan."""
    scan = _open(path, "semantic scan", mmap=False)
    xyz = np.asarray(scan[:, :3], dtype=np.float32)
    if not np.isfinite(xyz).all():
        raise DataError(f"{path}: semantic scan holds NaN or Inf coordinates; clean the file")
    try:
        anomalous = anomalous_tags(scan[:, 3])
    except UnknownLabel as error:
        raise DataError(f"{path}: {error}; this is not an AnoVox semantic scan") from None
    return xyz, anomalous
