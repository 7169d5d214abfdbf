"""AnoVox as its generator writes it (main.py --run, before any conversion): one folder per sensor.

    <root>/Scenario_<id>/
        RGB-CAM(0, 0, 1.8)(0, 0, 0)_<hash>/RGB-CAM(0, 0, 1.8)(0, 0, 0)_<hash>_<frame>.png   camera
        LIDAR(0, 0, 1.8)(0, 0, 0)_<hash>/LIDAR(...)_<hash>_<frame>.npy     (N, 4) x, -y, z, intensity
        SEMANTIC-LIDAR(...)_<hash>/SEMANTIC-LIDAR(...)_<hash>_<frame>.npy  (N, 4) x, -y, z, tag
        DEPTH_CAM(...)_<hash>/, SEMANTIC-CAM(...)_<hash>/, INSTANCE-CAM(...)_<hash>/   (not read)
        ACTION/, ANOMALY/ (csv, "key ; value" lines), sensor_setup.json          (not read)
A sensor folder is named sensor type + str(location) + str(rotation) + '_' + a hash of its
arguments (Scenarios/ScenarioUtil.py _create_sensor_name); the types are EgoVehicleSetup.py's
RGB-CAM, DEPTH_CAM, SEMANTIC-CAM, INSTANCE-CAM, LIDAR, SEMANTIC-LIDAR. A sensor set is the
camera, LiDAR and semantic LiDAR at one pose (location + rotation); a dataset generated with
several sets (stereo, multi, surround) is read at the first complete pose in name order, which
the report names. Points and labels: npy_scans.py; alignment of the two scans:
label_alignment.py.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
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
from tasks.base import DataError
from tasks.common.data_problems import ProblemList
from tasks.common.image_check import image_problem

CAMERA, LIDAR, SEMANTIC_LIDAR = "RGB-CAM", "LIDAR", "SEMANTIC-LIDAR"
SENSOR_FOLDER = re.compile(
    r"^(?P<sensor>RGB-CAM|DEPTH_CAM|SEMANTIC-CAM|INSTANCE-CAM|LIDAR|SEMANTIC-LIDAR)"
    r"(?P<pose>\([^()]*\)\([^()]*\))_(?P<hash>\d+)$"
)
READ_SENSORS = ((LIDAR, (".npy",)), (SEMANTIC_LIDAR, (".npy",)), (CAMERA, IMAGE_SUFFIXES))


def sensor_folders(scenario: Path) -> dict[str, dict[str, list[Path]]]:
    """pose -> sensor type -> its folders, for the sensor folders of one scenario."""
    poses: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for entry in sorted(scenario.iterdir()):
        match = SENSOR_FOLDER.match(entry.name) if entry.is_dir() else None
        if match:
            poses[match["pose"]][match["sensor"]].append(entry)
    return poses


class AnovoxGeneratorLayout:
    """Reader of the AnoVox generator's output layout (see the module docstring)."""

    name = "AnoVox as its generator writes it (Scenario_<id>/RGB-CAM(...), LIDAR(...), SEMANTIC-LIDAR(...))"
    unit = "frames"

    def recognises(self, root: Path) -> bool:
        return any(sensor_folders(scenario) for scenario in scenario_folders(root))

    def _sensor_set(self, scenario: Path, problems: ProblemList) -> tuple[str, list[Path]] | None:
        """(pose, [LiDAR, semantic LiDAR, camera folder]) of the first complete pose."""
        poses = sensor_folders(scenario)
        for pose in sorted(poses):
            sensors = poses[pose]
            if all(sensors.get(sensor) for sensor, _ in READ_SENSORS):
                repeated = [sensor for sensor, _ in READ_SENSORS if len(sensors[sensor]) > 1]
                if repeated:
                    problems.add(
                        f"{scenario}: several {' and '.join(repeated)} folders at pose {pose} "
                        f"({', '.join(path.name for sensor in repeated for path in sensors[sensor])}); "
                        "keep one per sensor"
                    )
                    return None
                return pose, [sensors[sensor][0] for sensor, _ in READ_SENSORS]
        found = ", ".join(
            f"{sensor}{pose}" for pose in sorted(poses) for sensor in sorted(poses[pose])
        ) or "none"
        problems.add(
            f"{scenario}: no pose with all of {CAMERA}, {LIDAR} and {SEMANTIC_LIDAR} folders "
            f"(sensor folders: {found}); this scenario is incomplete"
        )
        return None

    def scan(self, root: Path) -> LayoutScan:
        problems = ProblemList()
        matched = {}
        chosen_poses: Counter[str] = Counter()
        for scenario in scenario_folders(root):
            sensor_set = self._sensor_set(scenario, problems)
            if sensor_set is None:
                continue
            pose, folders = sensor_set
            points, labels, images = (
                index_frames(folder, suffix, problems) for folder, (_, suffix) in zip(folders, READ_SENSORS)
            )
            if not points:
                problems.add(f"{folders[0]}: no frames in this scenario; re-generate it or remove it")
                continue
            names = (folders[1].name, folders[2].name)
            rows = match_frames(scenario.name, points, labels, images, names, problems)
            if rows:
                matched[scenario.name] = rows
                chosen_poses[pose] += 1
        frames, split = frames_with_splits(matched)
        poses = ", ".join(f"{pose} in {count} scenarios" for pose, count in sorted(chosen_poses.items()))
        sources = [
            f"points: {LIDAR}(...)/*.npy columns x, -y, z, intensity (the generator's y flip gives a "
            "right-handed frame, x forward, y left, z up; read as stored)",
            f"labels: {SEMANTIC_LIDAR}(...)/*.npy 4th column, the semantic tag; anomalous = 29-34 and 100 "
            "(Definitions.py LABELS, anomaly classes and 'anomaly'); agent tags 101-128 (class + 100), "
            "ego vehicle 214 and classes 0-28 normal",
            f"alignment: a LiDAR point takes the label of the nearest semantic point within "
            f"{MATCH_RADIUS_M} m (index by index when both scans list the same points); {FRAME_RULE}",
            f"sensor set: pose {poses or 'none'}",
            split.describe(),
            "not read: DEPTH_CAM, SEMANTIC-CAM, INSTANCE-CAM, ACTION, ANOMALY csv, sensor_setup.json",
        ]
        return LayoutScan(frames=frames, sources=sources, problems=problems.lines)

    def check_frame(self, frame: FrameFiles) -> None:
        npy_scan_count(frame.points, "LiDAR scan", is_lidar=True)
        npy_scan_count(frame.labels, "semantic scan", is_lidar=False)
        problem = image_problem(frame.image)
        if problem:
            raise DataError(f"{frame.image}: camera image of frame {frame.sample_id} {problem}; re-generate it")

    def read_points(self, frame: FrameFiles) -> np.ndarray:
        return read_npy_lidar_points(frame.points)

    def read_point_labels(self, frame: FrameFiles, points: np.ndarray) -> np.ndarray:
        semantic_xyz, anomalous = read_npy_semantic_scan(frame.labels)
        return align_anomaly_labels(points[:, :3], semantic_xyz, anomalous)
