"""AnoVox read as users download it: both layouts, the label map, alignment, the split by
scenario, every problem listed, and no semantic column ever reaching the model."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.anomaly import data, task
from tasks.anomaly.anovox_labels import UnknownLabel, anomalous_colours, anomalous_tags
from tasks.anomaly.label_alignment import MATCH_RADIUS_M, align_anomaly_labels
from tasks.anomaly.layouts.detection import detect_layout
from tasks.anomaly.scenario_split import split_scenarios
from tasks.base import DataError
from tasks.common.pcd import packed_colours, read_pcd
from tests.fixtures.anovox import trees

LAYOUTS = {
    "released": (trees.write_released, "AnoVox as released"),
    "generator": (trees.write_generator, "AnoVox as its generator writes it"),
}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def anovox_tree(request, tmp_path_factory) -> tuple[str, Path, list[tuple[str, bool]]]:
    write, _ = LAYOUTS[request.param]
    root = tmp_path_factory.mktemp(f"anovox_{request.param}")
    plan = write(root, scenarios=8, frames=2)
    return request.param, root, plan


def copy_tree(tree, tmp_path) -> Path:
    _, root, _ = tree
    target = tmp_path / "copy"
    shutil.copytree(root, target)
    return target


def lidar_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and (p.parent.name == "PCD" or p.parent.name.startswith("LIDAR(")))


def semantic_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and (p.parent.name == "SEMANTIC_PCD" or p.parent.name.startswith("SEMANTIC-LIDAR(")))


# --- the label map: the dataset's own anomaly ids ---------------------------------------------


def test_anomaly_tags_are_definitions_anomaly_classes_and_agents_are_not():
    anomalies = [29, 30, 31, 32, 33, 34, 100]
    assert anomalous_tags(np.array(anomalies)).all()
    # Definitions.py's agent_* labels (class + 100, e.g. agent_car 114) and the ego vehicle
    agents = [112, 113, 114, 115, 116, 118, 119, 101, 128]
    normal = list(range(0, 29)) + agents + [214]
    assert not anomalous_tags(np.array(normal, dtype=np.float64)).any()
    with pytest.raises(UnknownLabel, match="57"):
        anomalous_tags(np.array([1, 57]))
    with pytest.raises(UnknownLabel, match="whole numbers"):
        anomalous_tags(np.array([1.5]))


def test_anomaly_colours_follow_the_benchmark_palette():
    colours = np.array([[245, 0, 0], [245, 33, 0], [0, 0, 142], [3, 0, 143], [0, 0, 1], [250, 128, 114]])
    assert anomalous_colours(colours).tolist() == [True, True, False, False, False, False]
    with pytest.raises(UnknownLabel, match=r"\(1, 2, 3\)"):
        anomalous_colours(np.array([[1, 2, 3]]))


# --- alignment of the LiDAR's points with the semantic LiDAR's labels ------------------------


def test_alignment_index_by_index_for_the_same_scan_and_nearest_otherwise():
    semantic = np.array([[10.0, 0, 0], [10.0, 0.2, 0], [20.0, 0, 0], [30.0, 5, 1]])
    anomalous = np.array([True, True, False, False])
    assert align_anomaly_labels(semantic, semantic, anomalous).tolist() == anomalous.tolist()
    lidar = np.array([[20.0, 0.05, 0], [10.05, 0.18, 0], [10.0, 0.0, MATCH_RADIUS_M + 0.3], [30.0, 5, 1.1]])
    # nearest semantic points: 20 m (normal), the second anomaly point, none within the radius, far normal
    assert align_anomaly_labels(lidar, semantic, anomalous).tolist() == [False, True, False, False]
    assert not align_anomaly_labels(lidar, semantic, np.zeros(4, dtype=bool)).any()


def test_alignment_takes_the_nearest_label_even_next_to_an_anomaly():
    semantic = np.array([[10.0, 0, 0], [10.0, 0.3, 0]])
    lidar = np.array([[10.0, 0.1, 0], [10.0, 0.25, 0]])
    assert align_anomaly_labels(lidar, semantic, np.array([True, False])).tolist() == [True, False]


# --- the split by scenario --------------------------------------------------------------------


def test_split_is_by_scenario_deterministic_and_stable_when_scenarios_are_added():
    names = [f"Scenario_{scenario_id}" for scenario_id in trees.SCENARIO_IDS]
    first = split_scenarios(names)
    assert split_scenarios(list(reversed(names))).assignment == first.assignment
    assert set(first.assignment.values()) == {"train", "val", "test"}
    grown = split_scenarios(names + ["Scenario_ffffffff-1111-4111-8111-ffffffffffff"])
    assert all(grown.assignment[name] == split for name, split in first.assignment.items())
    assert "crc32(folder name) % 100" in first.describe()


def test_split_falls_back_to_a_ranked_cut_when_buckets_leave_val_empty():
    names = [f"Scenario_{scenario_id}" for scenario_id in trees.SCENARIO_IDS]
    train_only = [name for name in names if split_scenarios([name]).assignment[name] == "train"][:3]
    split = split_scenarios(train_only)
    assert sorted(split.assignment.values()) == ["train", "train", "val"]
    assert "ranked" in split.describe()


def test_no_scenario_has_frames_in_two_splits(anovox_tree):
    _, root, plan = anovox_tree
    splits_of = {}
    for split in ("train", "val", "test"):
        try:
            loaded = data.load_split(root, split, 16, 32, 5)
        except DataError:
            continue
        for sample in loaded.scene_ids:
            splits_of.setdefault(sample.split("/")[0], set()).add(split)
    assert set(splits_of) == {name for name, _ in plan}
    assert all(len(splits) == 1 for splits in splits_of.values())


# --- both layouts: report, points, labels -----------------------------------------------------


def test_check_data_reports_layout_frames_per_split_and_sources(anovox_tree):
    layout, root, plan = anovox_tree
    report = task.check_data(root)
    assert report.layout.startswith(LAYOUTS[layout][1])
    assert report.problems == [] and report.leaks == []
    assert report.unit == "frames" and sum(report.splits.values()) == 2 * len(plan)
    assert report.splits["train"] and report.splits["val"]
    text = " ".join(report.sources)
    assert "split by scenario" in text and "nearest semantic point" in text and "not read" in text


def test_loaded_points_are_the_lidar_scan_and_labels_its_aligned_anomaly_points(anovox_tree):
    layout, root, plan = anovox_tree
    anomalous_scenarios = {name for name, anomalous in plan if anomalous}
    for split in ("train", "val"):
        loaded = data.load_split(root, split, 16, 256, min_anomalous_points=5)
        for index, sample in enumerate(loaded.scene_ids):
            scenario = sample.split("/")[0]
            real = loaded.points[index][loaded.point_mask[index]].numpy()
            # the fixture's LiDAR drops every 10th of 56 normal (+ 8 anomaly) surface points:
            # 51 points stay in a normal frame, 58 with 7 of the anomaly's in an anomalous one
            anomalous = scenario in anomalous_scenarios
            assert int(loaded.anomalous_point_counts[index]) == (7 if anomalous else 0), sample
            assert loaded.scene_labels[index] == float(anomalous)
            assert len(real) == (58 if anomalous else 51)
            assert 0.0 <= real[:, 3].min() and real[:, 3].max() <= 1.0
            if layout == "generator":  # stored as x, -y, z; read as stored
                assert (real[:, 1] <= 4.0).all() and (real[:, 1] >= -4.0).all()


def raw_lidar_rows(path: Path) -> dict[tuple, float]:
    """(x, y, z) -> intensity, read straight from a LiDAR file without the task's readers."""
    if path.suffix == ".npy":
        scan = np.load(path)
        return {tuple(np.round(row[:3], 4).tolist()): float(row[3]) for row in scan}
    cloud = read_pcd(path)
    red = packed_colours(cloud["rgb"])[:, 0] / 255.0
    xyz = np.stack([cloud[axis] for axis in "xyz"], axis=1)
    return {tuple(np.round(row, 4).tolist()): float(value) for row, value in zip(xyz, red)}


def test_model_points_are_exactly_the_lidar_columns_never_a_semantic_column(anovox_tree):
    """Every real row of the points tensor is a row x, y, z, intensity of its LiDAR file (read
    here without the task's readers); no semantic tag (1, 14, 33, 114) is ever a column."""
    _, root, _ = anovox_tree
    loaded = data.load_split(root, "train", 16, 256, 5)
    reader, _, _ = detect_layout(root)
    files = {frame.sample_id: frame.points for frame in reader.scan(root).frames}
    for index, sample in enumerate(loaded.scene_ids):
        real = loaded.points[index][loaded.point_mask[index]].numpy()
        assert real.shape[1] == 4
        rows = raw_lidar_rows(files[sample])
        assert len(real) == len(rows)
        for row in real:
            assert rows[tuple(np.round(row[:3], 4).tolist())] == pytest.approx(float(row[3]), abs=1e-6)
        assert real[:, 3].max() <= 1.0 and not np.isin(real, [14.0, 33.0, 114.0]).all(axis=0).any()


def test_released_variants_label_field_npy_scans_and_jpeg_images_read_alike(tmp_path):
    """SEMANTIC_PCD with PCL's integer `label` field; PCD / SEMANTIC_PCD holding the generator's
    .npy arrays (Definitions.py DataFormat names .npy for both); JPEG camera images."""
    reference_root, variant_root = tmp_path / "reference", tmp_path / "variant"
    trees.write_released(reference_root, scenarios=6, frames=1)
    plan = trees.write_released(variant_root, scenarios=6, frames=1, semantic_field="label")
    converted = variant_root / plan[0][0]
    for pcd in sorted((converted / "PCD").glob("*.pcd")):
        cloud = read_pcd(pcd)
        intensity = packed_colours(cloud["rgb"])[:, 0] / 255.0
        np.save(pcd.with_suffix(".npy"), np.column_stack([cloud["x"], cloud["y"], cloud["z"], intensity]))
        pcd.unlink()
    for png in sorted((converted / "RGB_IMG").glob("*.png")):
        Image.open(png).save(png.with_suffix(".jpg"))
        png.unlink()
    assert task.check_data(variant_root).problems == []
    for split in ("train", "val"):
        reference = data.load_split(reference_root, split, 8, 128, 5)
        variant = data.load_split(variant_root, split, 8, 128, 5)
        assert torch.equal(reference.scene_labels, variant.scene_labels)
        assert torch.equal(reference.anomalous_point_counts, variant.anomalous_point_counts)
        assert torch.allclose(reference.points, variant.points, atol=1e-6)


# --- a semantic scan given where points are expected is refused --------------------------------


def test_semantic_scans_copied_over_the_lidar_scans_are_refused(anovox_tree, tmp_path):
    root = copy_tree(anovox_tree, tmp_path)
    lidar, semantic = lidar_files(root), semantic_files(root)
    assert len(lidar) == len(semantic)
    for target, source in zip(lidar, semantic):
        shutil.copyfile(source, target)
    report = task.check_data(root)
    assert len(report.problems) == len(lidar)
    assert all(("semantic tags" in p or "label colours" in p) for p in report.problems), report.problems[:2]
    with pytest.raises(DataError, match="would hand the model its label"):
        data.load_split(root, "train", 16, 32, 5)


def write_two_scene_manifest(root: Path, image: Path, points: Path) -> None:
    labels = np.zeros(len(np.load(points)), dtype=np.uint8)
    np.save(root / "labels.npy", labels)
    with (root / "manifest.csv").open("w", newline="") as file:  # sensor names hold commas
        writer = csv.writer(file)
        writer.writerow(["scene_id", "image", "points", "labels", "split"])
        for scene, split in (("a", "train"), ("b", "val")):
            writer.writerow([scene, image.relative_to(root), points.relative_to(root), "labels.npy", split])


def test_manifest_pointing_points_at_a_semantic_scan_is_refused(tmp_path):
    root = tmp_path / "gen"
    trees.write_generator(root, scenarios=2, frames=1)
    semantic = semantic_files(root)[0]
    image = next(root.rglob("RGB-CAM*/*.png"))
    copied = root / "points.npy"
    shutil.copyfile(semantic, copied)
    for points, message in ((semantic, "a semantic scan given as the points"), (copied, "semantic tags")):
        write_two_scene_manifest(root, image, points)
        report = task.check_data(root)
        assert report.layout.startswith("scene manifest")
        assert any(message in problem for problem in report.problems), report.problems


def test_manifest_pointing_image_at_a_semantic_or_instance_image_is_refused(tmp_path):
    root = tmp_path / "gen"
    trees.write_generator(root, scenarios=2, frames=1)
    for sensor in ("SEMANTIC-CAM", "INSTANCE-CAM"):
        write_two_scene_manifest(root, next(root.rglob(f"{sensor}*/*.png")), lidar_files(root)[0])
        problems = task.check_data(root).problems
        assert len(problems) == 2 and all("given as the camera image" in p for p in problems), problems


# --- bad input: one line per problem, every problem listed -----------------------------------


def test_truncated_pcd_and_missing_counterparts_are_all_listed(tmp_path):
    root = tmp_path / "released"
    plan = trees.write_released(root, scenarios=6, frames=2)
    truncated = lidar_files(root)[0]
    truncated.write_bytes(truncated.read_bytes()[:-9])
    orphan = semantic_files(root)[3]
    orphan.unlink()
    empty = root / plan[4][0] / "PCD"
    shutil.rmtree(empty)
    empty.mkdir()
    missing = root / plan[5][0] / "SEMANTIC_PCD"
    shutil.rmtree(missing)
    report = task.check_data(root)
    problems = [problem for problem in report.problems if "falls in split" not in problem]
    joined = "\n".join(problems)
    assert len(problems) == 4, problems
    assert f"{truncated}: LiDAR scan is unreadable: truncated" in joined
    assert "has no counterpart in SEMANTIC_PCD/" in joined and orphan.name.replace("SEMANTIC_", "") in joined
    assert f"{empty}: no frames in this scenario" in joined
    assert "no SEMANTIC_PCD/ folder" in joined
    assert all("\n" not in problem for problem in report.problems)


def test_generator_frame_without_semantic_scan_and_bad_names(tmp_path):
    root = tmp_path / "generator"
    trees.write_generator(root, scenarios=4, frames=2)
    semantic_files(root)[0].unlink()
    lidar = lidar_files(root)[2]
    lidar.rename(lidar.with_name("LIDAR_scan_final.npy"))
    report = task.check_data(root)
    joined = "\n".join(report.problems)
    assert "has no counterpart in SEMANTIC-LIDAR(0, 0, 1.8)(0, 0, 0)_" in joined
    assert "no frame id after the last '_'" in joined


def test_generator_reads_the_complete_sensor_set_and_names_incomplete_ones(tmp_path):
    root = tmp_path / "generator"
    plan = trees.write_generator(root, scenarios=6, frames=1)
    # a stereo camera beside the set (STEREO_ONE_LIDAR_SENSOR_SETS): a pose with a camera only
    (root / plan[0][0] / "RGB-CAM(0, -1, 1.8)(0, 0, -15)_8213457291546379054").mkdir()
    lonely = root / plan[1][0]
    shutil.rmtree(next(lonely.glob("SEMANTIC-LIDAR(*")))
    report = task.check_data(root)
    (problem,) = [p for p in report.problems if "falls in split" not in p]
    assert problem.startswith(f"{lonely}: no pose with all of RGB-CAM, LIDAR and SEMANTIC-LIDAR folders")
    assert "sensor set: pose (0, 0, 1.8)(0, 0, 0) in 5 scenarios" in report.sources


def test_unknown_layout_and_empty_scenarios_are_one_line_problems(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("x")
    report = task.check_data(tmp_path / "stuff")
    assert report.layout == "not recognised" and len(report.problems) == 1
    assert "no manifest.csv, manifest.parquet or Scenario_* folders" in report.problems[0]
    (tmp_path / "scenarios" / "Scenario_1").mkdir(parents=True)
    report = task.check_data(tmp_path / "scenarios")
    assert "hold no sensor folders AnoVox writes" in report.problems[0]
    assert task.check_data(tmp_path / "absent").problems[0].endswith("`orchestrate data --task anomaly`")


def test_unknown_label_colour_is_named_when_loading(tmp_path):
    root = tmp_path / "released"
    trees.write_released(root, scenarios=6, frames=1)
    target = semantic_files(root)[0]
    blob = bytearray(target.read_bytes())
    blob[-2] = 77  # the last point's red channel: (77, 64, 128) is no AnoVox colour
    target.write_bytes(bytes(blob))
    split = next(s for s in ("train", "val", "test")
                 if any(f.labels == target for f in detect_layout(root)[0].scan(root).frames if f.split == s))
    with pytest.raises(DataError, match=rf"{target.name}.*label colour\(s\) \(77, "):
        data.load_split(root, split, 16, 32, 5)


def test_dataset_one_level_down_is_found_and_said(tmp_path):
    trees.write_generator(tmp_path / "Outputs" / "Final_Output_2024_06_12-10_00", scenarios=6, frames=1)
    report = task.check_data(tmp_path / "Outputs")
    assert report.problems == []
    assert report.sources[0].startswith("dataset root: ")
    assert "Final_Output_2024_06_12-10_00" in report.sources[0]
