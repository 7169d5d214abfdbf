"""The demo dataset: procedural drives (demo_scenes.py) written exactly as AnoVox is released.

    <root>/Scenario_<uuid>/RGB_IMG/RGB_IMG_<frame>.png
                          PCD/PCD_<frame>.pcd                 x y z rgb, binary, as Open3D writes
                                                              it; intensity as a grey rgb
                          SEMANTIC_PCD/SEMANTIC_PCD_<frame>.pcd x y z rgb, the label colours
                          ANOMALY/ANOMALY_<frame>.csv         in anomalous scenarios: the anomaly
                                                              object's "key ; value" lines
    <root>/Scenario_Configuration_Files/demo_scenarios.json   the scenario definitions
No VOXEL_GRID (the task does not read it). Frame ids are consecutive world frame numbers from a
per-scenario start, as CARLA's ticks are. The split is the task's split by scenario, so which
scenarios are train, val and test follows from their (seeded) uuids: uuids are drawn, and each
kept while its split still has room, until the splits hold 70 / 15 / 15% of the scenarios (at
least MIN_SCENARIOS_PER_SPLIT each). Everything is deterministic in the seed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from tasks.anomaly.demo_scenes import plan_scenario, render_frame
from tasks.anomaly.layouts.anovox_released import IMAGE_FOLDER, LABELS_FOLDER, POINTS_FOLDER
from tasks.anomaly.layouts.anovox_scenarios import CONFIGURATION_FOLDER, SCENARIO_PREFIX
from tasks.anomaly.scenario_split import bucket_split
from tasks.common.demo_encoders import place_image_encoder
from tasks.common.pcd import pack_colours, write_pcd

SCENARIOS = 232  # 162 train, 35 val, 35 test: 486 / 105 / 105 scenes
FRAMES_PER_SCENARIO = 3
ANOMALOUS_FRACTION = 0.35
MIN_SCENARIOS_PER_SPLIT = 2
ANOMALY_FOLDER = "ANOMALY"


def write_scan(path: Path, xyz: np.ndarray, colours: np.ndarray) -> None:
    """One scan as Open3D's write_point_cloud writes it: FIELDS x y z rgb, all F, binary."""
    write_pcd(path, {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "rgb": pack_colours(colours)})


def grey_levels(intensity: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 grey colours carrying intensity in [0, 1] (read back as red / 255)."""
    level = np.clip(np.round(intensity * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(level[:, None], 3, axis=1)


def anomaly_csv(frame_id: int, scenario_id: str, plan_anomaly, travel: float) -> str:
    """The ANOMALY csv of one frame, in the generator's "key ; value" form (Scenarios/Util.py)."""
    rows = {
        "frame_id": frame_id, "scenario_id": scenario_id, "anomaly_id": 4242,
        "anomaly_type_id": f"static.prop.demo_{plan_anomaly.shape}", "anomaly_is_alive": True,
        "semantic_tags": [33], "location": (plan_anomaly.x - travel, plan_anomaly.y, plan_anomaly.centre_z),
        "velocity": (0.0, 0.0, 0.0), "acceleration": (0.0, 0.0, 0.0),
    }
    return "".join(f"{key} ; {value}\n" for key, value in rows.items())


def write_scenario(root: Path, scenario_id: str, anomalous: bool, rng: np.random.Generator) -> None:
    """All frames of one scenario in the released layout."""
    folder = root / f"{SCENARIO_PREFIX}{scenario_id}"
    for name in (IMAGE_FOLDER, POINTS_FOLDER, LABELS_FOLDER) + ((ANOMALY_FOLDER,) if anomalous else ()):
        (folder / name).mkdir(parents=True, exist_ok=True)
    plan = plan_scenario(rng, anomalous, FRAMES_PER_SCENARIO)
    first_frame = int(rng.integers(100, 5000))
    for step in range(FRAMES_PER_SCENARIO):
        frame_id = first_frame + step
        frame = render_frame(plan, step, rng)
        Image.fromarray(frame.image).save(folder / IMAGE_FOLDER / f"{IMAGE_FOLDER}_{frame_id}.png")
        write_scan(folder / POINTS_FOLDER / f"{POINTS_FOLDER}_{frame_id}.pcd",
                   frame.lidar[:, :3], grey_levels(frame.lidar[:, 3]))
        write_scan(folder / LABELS_FOLDER / f"{LABELS_FOLDER}_{frame_id}.pcd",
                   frame.semantic_xyz, frame.semantic_colours)
        if plan.anomaly is not None:
            csv_text = anomaly_csv(frame_id, scenario_id, plan.anomaly, 2.0 * step)
            (folder / ANOMALY_FOLDER / f"{ANOMALY_FOLDER}_{frame_id}.csv").write_text(csv_text)


def split_quotas(count: int) -> dict[str, int]:
    """Scenarios per split: 15% each to val and test (at least MIN_SCENARIOS_PER_SPLIT), the rest train."""
    held_out = max(MIN_SCENARIOS_PER_SPLIT, round(0.15 * count))
    return {"train": max(MIN_SCENARIOS_PER_SPLIT, count - 2 * held_out), "val": held_out, "test": held_out}


def scenario_ids(seed: int, count: int) -> list[str]:
    """Seeded uuids, each kept while the split its name falls in has room (split_quotas)."""
    rng = np.random.default_rng([seed, 0])
    room = split_quotas(count)
    ids: list[str] = []
    while any(room.values()):
        candidate = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        split = bucket_split(f"{SCENARIO_PREFIX}{candidate}")
        if room[split]:
            room[split] -= 1
            ids.append(candidate)
    return ids


def make_demo_data(root: Path, seed: int = 0, scenarios: int = SCENARIOS, encoders: bool = True) -> None:
    """Write the demo dataset (see the module docstring) under root, deterministic in seed.

    scenarios: how many (tests write fewer); 35% of them, drawn with the seed, are anomalous.
    """
    root = Path(root)
    ids = scenario_ids(seed, scenarios)
    anomalous = np.zeros(len(ids), dtype=bool)
    anomalous[: round(ANOMALOUS_FRACTION * len(ids))] = True
    np.random.default_rng([seed, 1]).shuffle(anomalous)
    for index, (scenario_id, is_anomalous) in enumerate(zip(ids, anomalous)):
        write_scenario(root, scenario_id, bool(is_anomalous), np.random.default_rng([seed, 2, index]))
    (root / CONFIGURATION_FOLDER).mkdir(parents=True, exist_ok=True)
    definitions = {
        "scenario_definition": {
            "map": "demo",
            "scenarios": [
                {"id": scenario_id, "anomaly_config": {"anomalytype": "STATIC" if flag else "NORMALITY"}}
                for scenario_id, flag in zip(ids, anomalous.tolist())
            ],
        }
    }
    (root / CONFIGURATION_FOLDER / "demo_scenarios.json").write_text(json.dumps(definitions, indent=1))
    if encoders:  # the pretrained image encoder the search space names (demo_encoders.py)
        place_image_encoder(Path(root))
