"""What both AnoVox layouts share: scenario folders, frame ids in file names, matching sensors.

An AnoVox dataset is a folder of `Scenario_<id>/` folders (the generator names them
f"Scenario_{scenario_id}", FileStructureManager.py) beside `Scenario_Configuration_Files/`
(the scenario definitions, not read). Every data file is named `<folder>_<frame id><suffix>`
(create_file_name: f"{subfolder}_{frame_id}{file_ending}", e.g. PCD/PCD_271.pcd), the frame id
being CARLA's world frame number; the dataset's own readers take the digits after the last "_"
(`int(name.split('_')[-1].split('.')[0])`), and so do we. A sample is one frame id present in the
LiDAR, the semantic LiDAR and the camera folder of one scenario.
"""

from __future__ import annotations

from pathlib import Path

from tasks.anomaly.layouts.base import FrameFiles
from tasks.anomaly.scenario_split import ScenarioSplit, split_scenarios
from tasks.common.data_problems import ProblemList

SCENARIO_PREFIX = "Scenario_"
CONFIGURATION_FOLDER = "Scenario_Configuration_Files"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FRAME_RULE = "frames matched across sensors by the frame id after the last '_' of each file name"


def scenario_folders(root: Path) -> list[Path]:
    """The Scenario_* folders of root, sorted by name."""
    return sorted(
        entry for entry in Path(root).iterdir()
        if entry.is_dir() and entry.name.startswith(SCENARIO_PREFIX) and entry.name != CONFIGURATION_FOLDER
    )


def frame_id(path: Path) -> int | None:
    """The frame id of `<folder>_<digits>.<suffix>`, None when the name has none."""
    tail = Path(path).stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def index_frames(folder: Path, suffixes: tuple[str, ...], problems: ProblemList) -> dict[int, Path]:
    """frame id -> file of one sensor folder; names without a frame id, files of another
    suffix and repeated frame ids are problems (hidden files are skipped)."""
    frames: dict[int, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix.lower() not in suffixes:
            problems.add(
                f"{path}: expected only {' or '.join(suffixes)} files in {folder.name}/; move or remove this one"
            )
            continue
        number = frame_id(path)
        if number is None:
            problems.add(
                f"{path}: no frame id after the last '_' of the name; rename it <folder>_<frame>{path.suffix}"
            )
        elif number in frames:
            problems.add(f"{path}: frame {number} also in {frames[number].name}; keep one of the two")
        else:
            frames[number] = path
    return frames


def match_frames(
    scenario: str,
    points: dict[int, Path],
    labels: dict[int, Path],
    images: dict[int, Path],
    names: tuple[str, str],
    problems: ProblemList,
) -> list[tuple[int, Path, Path, Path]]:
    """(frame, image, points, labels) for each LiDAR frame with both counterparts; a LiDAR frame
    missing its semantic scan or image is a problem naming the file. names: the semantic and
    camera folder names, for the messages."""
    labels_name, image_name = names
    matched = []
    for number, scan in sorted(points.items()):
        missing = [name for name, files in ((labels_name, labels), (image_name, images)) if number not in files]
        if missing:
            problems.add(
                f"{scan}: frame {number} of {scenario} has no counterpart in {' and '.join(missing)}/ "
                "(its labels or image); restore the missing file or remove the frame"
            )
            continue
        matched.append((number, images[number], scan, labels[number]))
    return matched


def frames_with_splits(
    matched: dict[str, list[tuple[int, Path, Path, Path]]]
) -> tuple[list[FrameFiles], ScenarioSplit]:
    """FrameFiles of every matched frame, each with its scenario's split (scenario_split.py)."""
    split = split_scenarios(sorted(matched))
    frames = [
        FrameFiles(
            sample_id=f"{scenario}/{number}", scenario=scenario, split=split.assignment[scenario],
            image=image, points=scan, labels=labels,
        )
        for scenario, rows in sorted(matched.items())
        for number, image, scan, labels in rows
    ]
    return frames, split
