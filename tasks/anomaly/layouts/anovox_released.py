"""AnoVox as released: one folder per scenario, one folder per data type, one file per frame.

    <root>/Scenario_<id>/RGB_IMG/RGB_IMG_<frame>.png         camera image      (read)
                        PCD/PCD_<frame>.pcd                  LiDAR scan        (read: the points)
                        SEMANTIC_PCD/SEMANTIC_PCD_<frame>.pcd semantic scan   (read: the labels)
                        (.npy scans in these folders are read as the generator's arrays)
                        VOXEL_GRID/VOXEL_GRID_<frame>.npy    voxel labels      (not read)
                        ANOMALY/ANOMALY_<frame>.csv          anomaly object's "key ; value" lines
                                                             (id, type, location, ...; not read)
                        DEPTH_IMG/, SEMANTIC_IMG/, ACTION/, ... (not read)
    <root>/Scenario_Configuration_Files/, color_palette.txt  (not read)
The folder and file names are those the AnoVox benchmark and its loaders read (anovox
benchmark/eval/evaluate_sensor.py, Open_world_3D_semantic_segmentation dataloader/pc_dataset.py:
`os.path.join(root, scenario, 'PCD')`, `'SEMANTIC_PCD'`; e.g. Scenario_<uuid>/PCD/PCD_271.pcd).
Points and labels: pcd_scans.py; alignment of the two scans: label_alignment.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.anomaly.label_alignment import MATCH_RADIUS_M, align_anomaly_labels
from tasks.anomaly.layouts.anovox_scenarios import (
    FRAME_RULE,
    IMAGE_SUFFIXES,
    frames_with_splits,
    index_frames,
    match_frames,
    scenario_folders,
)
from tasks.anomaly.layouts.base import FrameFiles, LayoutScan
from tasks.anomaly.npy_scans import npy_scan_count, read_npy_lidar_points, read_npy_semantic_scan
from tasks.anomaly.pcd_scans import (
    check_pcd_lidar_scan,
    pcd_semantic_count,
    read_pcd_lidar_points,
    read_pcd_semantic_scan,
)
from tasks.base import DataError
from tasks.common.data_problems import ProblemList
from tasks.common.image_check import image_problem

IMAGE_FOLDER = "RGB_IMG"
POINTS_FOLDER = "PCD"
LABELS_FOLDER = "SEMANTIC_PCD"
# .pcd as released; .npy as the generator's DataFormat (Definitions.py: PCD = SEMANTIC_PCD = ".npy")
# names it, for a tree converted with that enum's folder names.
SCAN_SUFFIXES = (".pcd", ".npy")
SENSOR_FOLDERS = ((POINTS_FOLDER, SCAN_SUFFIXES), (LABELS_FOLDER, SCAN_SUFFIXES), (IMAGE_FOLDER, IMAGE_SUFFIXES))


class AnovoxReleasedLayout:
    """Reader of the released AnoVox layout (see the module docstring)."""

    name = "AnoVox as released (Scenario_<id>/RGB_IMG, PCD, SEMANTIC_PCD)"
    unit = "frames"

    def recognises(self, root: Path) -> bool:
        return any(
            (scenario / folder).is_dir() for scenario in scenario_folders(root) for folder, _ in SENSOR_FOLDERS
        )

    def scan(self, root: Path) -> LayoutScan:
        problems = ProblemList()
        matched = {}
        for scenario in scenario_folders(root):
            missing = [folder for folder, _ in SENSOR_FOLDERS if not (scenario / folder).is_dir()]
            if missing:
                problems.add(
                    f"{scenario}: no {', '.join(f'{name}/' for name in missing)} folder; this scenario is "
                    "incomplete (re-download or unpack it again, or remove it)"
                )
                continue
            points, labels, images = (
                index_frames(scenario / folder, suffix, problems) for folder, suffix in SENSOR_FOLDERS
            )
            if not points:
                problems.add(
                    f"{scenario / POINTS_FOLDER}: no frames in this scenario; re-download it or remove it"
                )
                continue
            rows = match_frames(scenario.name, points, labels, images, (LABELS_FOLDER, IMAGE_FOLDER), problems)
            if rows:
                matched[scenario.name] = rows
        frames, split = frames_with_splits(matched)
        sources = [
            f"points: {POINTS_FOLDER}/*.pcd x, y, z; intensity from an intensity field, else the red "
            "channel of rgb / 255 (as the AnoVox benchmark loader reads it)",
            f"labels: {LABELS_FOLDER}/*.pcd label colours, anomalous = (245, 0, 0) (anovox-label.yaml "
            "'anomaly' ids 33, 34; Definitions.py ANOMALY_COLOR) and Definitions.py's anomaly-class "
            "colours (245, 29-34, 0); or a label field of semantic tags, anomalous = 29-34 and 100; "
            "agents (tag 101-128), ego vehicle and all other classes normal",
            f"alignment: a LiDAR point takes the label of the nearest semantic point within "
            f"{MATCH_RADIUS_M} m (index by index when both scans list the same points); {FRAME_RULE}",
            split.describe(),
            "not read: VOXEL_GRID, ANOMALY csv, DEPTH_IMG, SEMANTIC_IMG, ACTION, Scenario_Configuration_Files",
        ]
        return LayoutScan(frames=frames, sources=sources, problems=problems.lines)

    def check_frame(self, frame: FrameFiles) -> None:
        if frame.points.suffix.lower() == ".npy":
            npy_scan_count(frame.points, "LiDAR scan", is_lidar=True)
        else:
            check_pcd_lidar_scan(frame.points)
        if frame.labels.suffix.lower() == ".npy":
            npy_scan_count(frame.labels, "semantic scan", is_lidar=False)
        else:
            pcd_semantic_count(frame.labels)
        problem = image_problem(frame.image)
        if problem:
            raise DataError(f"{frame.image}: camera image of frame {frame.sample_id} {problem}; re-download it")

    def read_points(self, frame: FrameFiles) -> np.ndarray:
        if frame.points.suffix.lower() == ".npy":
            return read_npy_lidar_points(frame.points)
        return read_pcd_lidar_points(frame.points)

    def read_point_labels(self, frame: FrameFiles, points: np.ndarray) -> np.ndarray:
        read = read_npy_semantic_scan if frame.labels.suffix.lower() == ".npy" else read_pcd_semantic_scan
        semantic_xyz, anomalous = read(frame.labels)
        return align_anomaly_labels(points[:, :3], semantic_xyz, anomalous)
