"""AnoVox's .pcd scans: a LiDAR scan as model points, a semantic scan as labelled points.

The released AnoVox was written with Open3D (`o3d.io.write_point_cloud`), whose PCD header is
`FIELDS x y z rgb`, `TYPE F F F F`, `DATA binary` (tasks/common/pcd.py reads every PCD kind).
- PCD/*.pcd (LiDAR): x, y, z; intensity from an `intensity` field when there is one, else the red
  channel of `rgb` / 255, as the AnoVox benchmark loader reads it (Open_world_3D_semantic_segmentation
  dataloader/pc_dataset.py: `np.asarray(pcd.colors)[:, 0]`), else 0.
- SEMANTIC_PCD/*.pcd: x, y, z and the label colour in `rgb` (see anovox_labels.py), or, when the
  file has one, a field of semantic tags (TAG_FIELDS: PCL's `label`, CARLA's `ObjTag`, ...).
Both raise DataError naming the file; `pcd_point_count` / `check_pcd_lidar_scan` are the cheap
checks (header, size, and the label guards of input_guard.py on a sample of a binary scan).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.anomaly.anovox_labels import UnknownLabel, anomalous_colours, anomalous_tags
from tasks.anomaly.input_guard import (
    GUARD_SAMPLE_ROWS,
    refuse_label_colours,
    refuse_semantic_path,
    refuse_tag_column,
)
from tasks.base import DataError
from tasks.common.pcd import COLOUR_FIELDS, PcdError, check_pcd_body, packed_colours, read_pcd, read_pcd_header



TAG_FIELDS = ("label", "semantic_tag", "ObjTag", "tag")


def pcd_point_count(path: Path, what: str) -> int:
    """Points the file's header announces, after checking the header and the body's size."""
    if not Path(path).is_file():
        raise DataError(f"{path}: {what} is missing; restore the file or remove the frame")
    try:
        header = read_pcd_header(path)
        check_pcd_body(path, header)
    except (PcdError, OSError) as error:
        raise DataError(f"{path}: {what} is unreadable: {error}; re-download it") from None
    missing = [axis for axis in "xyz" if axis not in header.names]
    if missing:
        raise DataError(f"{path}: {what} has no field {', '.join(missing)} (fields {' '.join(header.names)})")
    if header.points == 0:
        raise DataError(f"{path}: {what} holds no points; re-download it or remove the frame")
    return header.points


def pcd_semantic_count(path: Path) -> int:
    """The cheap check of a semantic scan: header, size, and a field that carries the labels."""
    count = pcd_point_count(path, "semantic scan")
    names = read_pcd_header(path).names
    if not any(name in names for name in TAG_FIELDS + COLOUR_FIELDS):
        raise DataError(
            f"{path}: semantic scan has no label field ({', '.join(TAG_FIELDS)}) and no rgb label "
            f"colour (fields {' '.join(names)}), so its points carry no label"
        )
    return count


def check_pcd_lidar_scan(path: Path) -> int:
    """The cheap check of a LiDAR scan: header and size, its place, and for a binary file the
    label guard on the intensity source of its first GUARD_SAMPLE_ROWS points."""
    refuse_semantic_path(path)
    count = pcd_point_count(path, "LiDAR scan")
    header = read_pcd_header(path)
    if header.data != "binary":
        return count  # ascii and compressed bodies are guarded when read
    rows = min(count, GUARD_SAMPLE_ROWS)
    with Path(path).open("rb") as file:
        file.seek(header.body_offset)
        head = np.frombuffer(file.read(rows * header.point_size), dtype=header.record_dtype(), count=rows)
    _intensity(head, path)
    return count


def _intensity(records: np.ndarray, path: Path) -> np.ndarray:
    """(N,) float32 intensity by the rule of the module docstring, after the label guards."""
    names = records.dtype.names
    colour_field = next((name for name in COLOUR_FIELDS if name in names), None)
    if "intensity" in names:
        intensity = records["intensity"].astype(np.float32)
        refuse_tag_column(intensity, path)
        return intensity
    if colour_field is not None:
        colours = packed_colours(records[colour_field])
        refuse_label_colours(colours, path)
        return colours[:, 0].astype(np.float32) / 255.0
    return np.zeros(len(records), dtype=np.float32)


def _records(path: Path, what: str) -> np.ndarray:
    try:
        return read_pcd(path)
    except (PcdError, OSError) as error:
        raise DataError(f"{path}: {what} is unreadable: {error}; re-download it") from None


def _xyz(records: np.ndarray, path: Path, what: str) -> np.ndarray:
    xyz = np.stack([records[axis].astype(np.float32) for axis in "xyz"], axis=1)
    if not np.isfinite(xyz).all():
        raise DataError(f"{path}: {what} holds NaN or Inf coordinates; clean the file")
    return xyz


def read_pcd_lidar_points(path: Path) -> np.ndarray:
    """(N, 4) float32 x, y, z, intensity of a LiDAR .pcd scan (intensity as the module says)."""
    refuse_semantic_path(path)
    pcd_point_count(path, "LiDAR scan")
    records = _records(path, "LiDAR scan")
    points = np.zeros((len(records), 4), dtype=np.float32)
    points[:, :3] = _xyz(records, path, "LiDAR scan")
    points[:, 3] = _intensity(records, path)
    return points


def read_pcd_semantic_scan(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) float32 x, y, z and (M,) bool anomalous, of a SEMANTIC_PCD scan."""
    pcd_semantic_count(path)
    records = _records(path, "semantic scan")
    names = records.dtype.names
    tag_field = next((name for name in TAG_FIELDS if name in names), None)
    try:
        if tag_field is not None:
            anomalous = anomalous_tags(records[tag_field])
        else:
            colour_field = next(name for name in COLOUR_FIELDS if name in names)
            anomalous = anomalous_colours(packed_colours(records[colour_field]))
    except UnknownLabel as error:
        raise DataError(f"{path}: {error}; this is not an AnoVox semantic scan") from None
    return _xyz(records, path, "semantic scan"), anomalous
