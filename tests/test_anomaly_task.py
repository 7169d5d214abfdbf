"""The anomaly task end to end on small real data: the manifest route's readers, the label rule,
layout problems, the demo in AnoVox's released layout, train, evaluate."""

from __future__ import annotations

import csv
import math
import re
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from tasks.anomaly import AnomalyConfig, task
from tasks.anomaly import data, demo
from tasks.anomaly.anovox_labels import anomalous_colours
from tasks.anomaly.demo_scenes import plan_scenario, render_frame
from tasks.anomaly.label_alignment import align_anomaly_labels
from tasks.anomaly.manifest import COLUMNS, read_manifest
from tasks.anomaly.ply import read_ply_points, write_ply_points
from tasks.base import DataError, Task

SMALL_CONFIG = dict(batch_size=16, num_points=64, embed_dim=16, point_hidden_dim=16, attention_heads=2)
MANIFEST_SPLITS = {"train": 40, "val": 20, "test": 10}
DEMO_SCENARIOS = 24
PLY_EVERY = 5


def write_manifest_dataset(root: Path, seed: int = 0) -> None:
    """The generic route: manifest.csv with images/, points/ (.npy, every 5th scene a binary or
    ASCII PLY) and labels/ (.npy 0/1 per LiDAR point), scenes rendered by the demo's world."""
    for folder in ("images", "points", "labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rows, index = [], 0
    for split, size in MANIFEST_SPLITS.items():
        for position in range(size):
            rng = np.random.default_rng([seed, index])
            frame = render_frame(plan_scenario(rng, anomalous=position % 3 == 0, frames=1), 0, rng)
            scene_id = f"scene_{index:04d}"
            labels = data_labels_for(frame)
            Image.fromarray(frame.image).save(root / "images" / f"{scene_id}.png")
            if index % PLY_EVERY == PLY_EVERY - 1:
                points_name = f"points/{scene_id}.ply"
                write_ply_points(root / points_name, frame.lidar, binary=(index // PLY_EVERY) % 2 == 0)
            else:
                points_name = f"points/{scene_id}.npy"
                np.save(root / points_name, frame.lidar)
            np.save(root / "labels" / f"{scene_id}.npy", labels)
            rows.append([scene_id, f"images/{scene_id}.png", points_name, f"labels/{scene_id}.npy", split])
            index += 1
    with (root / "manifest.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def data_labels_for(frame) -> np.ndarray:
    """0/1 per LiDAR point: the label colour of its nearest semantic point is the anomaly's."""
    anomalous = anomalous_colours(frame.semantic_colours)
    return align_anomaly_labels(frame.lidar[:, :3], frame.semantic_xyz, anomalous).astype(np.uint8)


@pytest.fixture(scope="module")
def manifest_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("anomaly_manifest")
    write_manifest_dataset(root)
    return root


@pytest.fixture
def copy_of_manifest(manifest_dir, tmp_path) -> Path:
    root = tmp_path / "manifest_copy"
    shutil.copytree(manifest_dir, root)
    return root


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """The demo generator with fewer scenarios (the full demo has 100)."""
    root = tmp_path_factory.mktemp("anomaly_small_demo")
    demo.make_demo_data(root, seed=0, scenarios=DEMO_SCENARIOS)
    return root


def problems_of(root: Path) -> list[str]:
    report = task.check_data(root)
    assert all("\n" not in problem for problem in report.problems)
    return report.problems


def manifest_rows(root: Path) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def write_manifest(root: Path, rows: list[dict[str, str]]) -> None:
    with (root / "manifest.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def assert_within_bounds(prefix: str, values: dict[str, float]) -> None:
    for key, value in values.items():
        full_key = f"{prefix}/{key}"
        bounds = [task.value_bounds[p] for p in task.value_bounds if fnmatch(full_key, p)]
        assert bounds, f"{full_key} has no declared bounds"
        assert math.isfinite(value), full_key
        assert all(low <= value <= high for low, high in bounds), (full_key, value, bounds)


# --- point-cloud files -------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip_binary_and_ascii(tmp_path, binary):
    points = np.array([[1.5, -2.0, 0.25, 0.5], [3.0, 4.0, -1.0, 1.0]], dtype=np.float32)
    write_ply_points(tmp_path / "cloud.ply", points, binary=binary)
    np.testing.assert_allclose(read_ply_points(tmp_path / "cloud.ply"), points, rtol=1e-6)


def test_ply_without_intensity_and_with_extra_properties_reads_xyz(tmp_path):
    path = tmp_path / "cloud.ply"
    path.write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty double z\nproperty uchar red\n"
        "property double x\nproperty double y\nelement face 0\nproperty list uchar int vertex_indices\n"
        "end_header\n3 255 1 2\n6 0 4 5\n"
    )
    np.testing.assert_allclose(read_ply_points(path), [[1, 2, 3, 0], [4, 5, 6, 0]])


def test_truncated_binary_ply_is_caught_by_check_data(copy_of_manifest):
    entry = next(e for e in read_manifest(copy_of_manifest) if e.points.suffix == ".ply"
                 and b"binary" in e.points.read_bytes()[:60])
    entry.points.write_bytes(entry.points.read_bytes()[:-10])
    problems = problems_of(copy_of_manifest)
    assert len(problems) == 1 and entry.points.name in problems[0] and "truncated" in problems[0]


def test_truncated_npy_point_cloud_is_caught_by_check_data(copy_of_manifest):
    entry = next(e for e in read_manifest(copy_of_manifest) if e.points.suffix == ".npy")
    entry.points.write_bytes(entry.points.read_bytes()[:-64])
    (problem,) = problems_of(copy_of_manifest)
    assert entry.points.name in problem and entry.scene_id in problem and "truncated" in problem


def test_every_problem_is_listed_not_only_the_first(copy_of_manifest):
    entries = read_manifest(copy_of_manifest)
    for entry in entries[:3]:
        entry.points.write_bytes(entry.points.read_bytes()[:-64])
    entries[5].image.write_bytes(b"not a png")
    problems = problems_of(copy_of_manifest)
    assert len(problems) == 4
    assert [entry.scene_id in problem for entry, problem in zip(entries[:3], problems)] == [True] * 3


def test_manifest_fixture_mixes_npy_binary_ply_and_ascii_ply(manifest_dir):
    suffixes = [entry.points.suffix for entry in read_manifest(manifest_dir)]
    assert suffixes.count(".ply") == len(suffixes) // 5
    headers = {e.points.read_bytes()[:40] for e in read_manifest(manifest_dir) if e.points.suffix == ".ply"}
    assert any(b"binary_little_endian" in h for h in headers) and any(b"ascii" in h for h in headers)


# --- scene labels: from the point labels by the rule, never invented --------------------------


def test_scene_label_rule_counts_anomalous_points():
    labels = np.zeros(100, dtype=np.uint8)
    labels[:4] = 1
    assert data.scene_label(labels, min_anomalous_points=5) == 0
    labels[4] = 1
    assert data.scene_label(labels, min_anomalous_points=5) == 1
    assert data.scene_label(labels, min_anomalous_points=6) == 0


def test_loaded_scene_labels_follow_the_point_label_files_deterministically(manifest_dir):
    """The seed-report bug "a scene label drawn at random": every loaded label must equal the
    rule applied to that scene's label file, identically on every load."""
    first = data.load_split(manifest_dir, "val", 32, 64, min_anomalous_points=5)
    second = data.load_split(manifest_dir, "val", 32, 64, min_anomalous_points=5)
    assert torch.equal(first.scene_labels, second.scene_labels)
    entries = {e.scene_id: e for e in read_manifest(manifest_dir)}
    for scene_id, label in zip(first.scene_ids, first.scene_labels.tolist()):
        counted = int(np.load(entries[scene_id].labels).sum())
        assert label == float(counted >= 5), scene_id
    assert 0 < first.scene_labels.mean() < 1
    # the threshold is the config's: above every anomaly's size, no scene is anomalous
    strict = data.load_split(manifest_dir, "val", 32, 64, min_anomalous_points=10_000)
    assert strict.scene_labels.sum() == 0


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_scene_without_labels_raises_naming_the_scene(copy_of_manifest, damage):
    entry = read_manifest(copy_of_manifest)[3]
    if damage == "missing":
        entry.labels.unlink()
    else:
        np.save(entry.labels, np.zeros(0, dtype=np.uint8))
    (problem,) = problems_of(copy_of_manifest)
    assert entry.scene_id in problem
    with pytest.raises(DataError, match=entry.scene_id):
        data.load_split(copy_of_manifest, entry.split, 32, 64, 5)


def test_label_count_must_match_point_count(copy_of_manifest):
    entry = read_manifest(copy_of_manifest)[0]
    np.save(entry.labels, np.zeros(7, dtype=np.uint8))
    (problem,) = problems_of(copy_of_manifest)
    assert re.search(r"7 labels for \d+ points", problem)


def test_labels_other_than_zero_and_one_are_refused(copy_of_manifest):
    entry = read_manifest(copy_of_manifest)[0]
    count = len(np.load(entry.labels))
    np.save(entry.labels, np.full(count, 2, dtype=np.int64))
    with pytest.raises(DataError, match="other than 0 and 1"):
        data.load_split(copy_of_manifest, entry.split, 32, 64, 5)


# --- fixed-size point sets -------------------------------------------------------------------


def test_fixed_size_points_subsamples_deterministically_and_pads_with_a_mask():
    cloud = np.arange(40, dtype=np.float32).reshape(10, 4)
    sampled, mask = data.fixed_size_points(cloud, 6, seed=3)
    again, _ = data.fixed_size_points(cloud, 6, seed=3)
    assert mask.all() and np.array_equal(sampled, again)
    assert len({tuple(row) for row in sampled}) == 6  # without replacement
    assert {tuple(row) for row in sampled} <= {tuple(row) for row in cloud}
    padded, mask = data.fixed_size_points(cloud, 12, seed=3)
    assert mask.tolist() == [True] * 10 + [False] * 2
    assert np.array_equal(padded[:10], cloud) and not padded[10:].any()


# --- manifest and layout ---------------------------------------------------------------------


def test_parquet_manifest_reads_like_the_csv(copy_of_manifest):
    rows = manifest_rows(copy_of_manifest)
    pq.write_table(pa.Table.from_pylist(rows), copy_of_manifest / "manifest.parquet")
    from_csv = read_manifest(copy_of_manifest)
    (copy_of_manifest / "manifest.csv").unlink()
    assert read_manifest(copy_of_manifest) == from_csv
    report = task.check_data(copy_of_manifest)
    assert report.problems == [] and report.layout.startswith("scene manifest")
    assert report.splits == MANIFEST_SPLITS and report.unit == "scenes"
    assert "manifest.parquet" in report.sources[0]


def test_empty_or_missing_data_dir_is_a_one_line_problem(tmp_path):
    (problem,) = problems_of(tmp_path / "nowhere")
    assert "missing or empty" in problem
    (tmp_path / "stray.txt").write_text("x")
    (problem,) = problems_of(tmp_path)
    assert "no manifest.csv, manifest.parquet or Scenario_* folders" in problem


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "labels"} for r in rows], "missing column"),
        (lambda rows: [{**r, "split": "dev"} if i == 0 else r for i, r in enumerate(rows)], "split 'dev'"),
        (lambda rows: [{**r, "image": ""} if i == 0 else r for i, r in enumerate(rows)], "has no image"),
        (lambda rows: rows + rows[:1], "appears twice"),
        (lambda rows: [r for r in rows if r["split"] != "val"], "no scene has split val"),
    ],
)
def test_manifest_problems_are_one_line_problems(copy_of_manifest, edit, message):
    rows = edit(manifest_rows(copy_of_manifest))
    with (copy_of_manifest / "manifest.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (problem,) = problems_of(copy_of_manifest)
    assert message in problem


def test_the_same_file_in_two_splits_is_a_leak(copy_of_manifest):
    rows = manifest_rows(copy_of_manifest)
    val_row = next(index for index, row in enumerate(rows) if row["split"] == "val")
    rows[val_row]["points"] = rows[0]["points"]
    rows[val_row]["labels"] = rows[0]["labels"]
    write_manifest(copy_of_manifest, rows)
    report = task.check_data(copy_of_manifest)
    assert report.problems == []
    (leak,) = report.leaks
    assert rows[0]["points"] in leak and "train and val" in leak


def test_unreadable_image_and_missing_points_name_the_file(copy_of_manifest):
    entries = read_manifest(copy_of_manifest)
    entries[0].image.write_bytes(b"not a png")
    entries[1].points.unlink()
    entries[2].image.write_bytes(entries[2].image.read_bytes()[:-20])
    problems = problems_of(copy_of_manifest)
    assert len(problems) == 3
    assert entries[0].image.name in problems[0] and "not a readable image" in problems[0]
    assert entries[1].points.name in problems[1] and "missing" in problems[1]
    assert entries[2].image.name in problems[2] and "truncated" in problems[2]


# --- demo (AnoVox's released layout) -> check -> build -> train step -> evaluate / probe -------


def test_demo_is_deterministic_in_seed_and_in_the_released_layout(demo_dir, tmp_path):
    demo.make_demo_data(tmp_path / "again", seed=0, scenarios=DEMO_SCENARIOS)
    files = sorted(path for path in demo_dir.rglob("*") if path.is_file())
    assert files and all(
        (tmp_path / "again" / path.relative_to(demo_dir)).read_bytes() == path.read_bytes() for path in files
    )
    demo.make_demo_data(tmp_path / "other", seed=1, scenarios=DEMO_SCENARIOS)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) != sorted(p.name for p in demo_dir.iterdir())
    scenario = next(demo_dir.glob("Scenario_*"))
    assert {p.name for p in scenario.iterdir()} >= {"RGB_IMG", "PCD", "SEMANTIC_PCD"}
    frame = next(scenario.glob("PCD/PCD_*.pcd")).stem.split("_")[-1]
    assert (scenario / "RGB_IMG" / f"RGB_IMG_{frame}.png").is_file()
    assert (scenario / "SEMANTIC_PCD" / f"SEMANTIC_PCD_{frame}.pcd").is_file()
    assert (demo_dir / "Scenario_Configuration_Files").is_dir()


def test_demo_is_read_by_the_released_reader_with_about_a_third_anomalous(demo_dir):
    report = task.check_data(demo_dir)
    assert report.problems == [] and report.layout.startswith("AnoVox as released")
    assert all(report.splits[split] >= 2 * demo.FRAMES_PER_SCENARIO for split in ("train", "val", "test"))
    train = data.load_split(demo_dir, "train", 32, 64, 5)
    assert len(train) == report.splits["train"] and 0.15 <= train.scene_labels.mean() <= 0.55
    # stray labels under the threshold exist and do not make a frame anomalous
    everything = [data.load_split(demo_dir, split, 32, 64, 5) for split in ("train", "val", "test")]
    strays = [((s.anomalous_point_counts > 0) & (s.scene_labels == 0)).any() for s in everything]
    assert any(strays)


@pytest.fixture(scope="module")
def demo_setup(demo_dir):
    torch.manual_seed(0)
    return task.build(AnomalyConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu"))


def test_task_satisfies_the_interface():
    assert isinstance(task, Task)
    assert task.metric == "val/auroc" and task.mode == "max"


def test_a_training_step_gives_a_finite_loss_and_gradients_everywhere(demo_setup):
    demo_setup.model.train()
    batch = next(iter(demo_setup.train_batches))
    losses = task.training_step(demo_setup, batch)
    assert math.isfinite(losses["loss"].item()) and losses["loss"].item() >= 0
    losses["loss"].backward()
    for name, parameter in demo_setup.model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert any(parameter.grad.abs().sum() > 0 for parameter in demo_setup.model.image_encoder.parameters())
    assert any(parameter.grad.abs().sum() > 0 for parameter in demo_setup.model.point_encoder.parameters())
    demo_setup.model.zero_grad()


def test_evaluate_and_probe_keys_are_within_bounds_and_repeat_exactly(demo_setup):
    metrics = task.evaluate(demo_setup, "val")
    assert {"auroc", "auprc", "fpr95", "accuracy", "majority_rate", "chance/auroc"} <= set(metrics)
    assert metrics["chance/auroc"] == 0.5
    assert metrics["samples"] == len(demo_setup.extras["splits"]["val"].scene_labels)
    assert_within_bounds("val", metrics)
    assert task.evaluate(demo_setup, "val") == metrics
    assert_within_bounds("test", task.evaluate(demo_setup, "test"))
    probes = task.probe(demo_setup)
    assert {"image_shuffled/auroc", "points_shuffled/auroc", "image/offdiag_cosine",
            "points/dim_std", "points/dim"} <= set(probes)
    assert_within_bounds("probe", probes)
    assert_within_bounds("train", {"loss": 0.5})


def test_padded_points_do_not_change_the_score(demo_setup):
    val = demo_setup.extras["splits"]["val"]
    model = demo_setup.model.eval()
    images = torch.zeros(1, 3, 32, 32)
    points, mask = val.points[:1].clone(), val.point_mask[:1].clone()
    mask[0, 40:] = False
    with torch.no_grad():
        before = model(images, points, mask).logits
        points[0, 40:] = 99.0
        after = model(images, points, mask).logits
    assert torch.allclose(before, after, atol=1e-6)


def test_max_samples_per_split_loads_the_first_scenes_of_each_split(demo_dir, demo_setup):
    setup = task.build(AnomalyConfig(**SMALL_CONFIG, max_samples_per_split=5), demo_dir, "cpu")
    for split in ("train", "val"):
        cut, full = setup.extras["splits"][split], demo_setup.extras["splits"][split]
        assert cut.scene_ids == full.scene_ids[:5]
        assert torch.equal(cut.points, full.points[:5]) and torch.equal(cut.images, full.images[:5])
    assert task.evaluate(setup, "test")["samples"] == 5


# --- the shuffled-modality probes (the modality_ignored guard's evidence) ----------------------


def test_shuffled_probes_equal_the_model_run_on_moved_inputs(demo_setup, monkeypatch):
    """Moving encoded features between scenes (features kept from evaluate, or encoded a group
    at a time) gives the AUROC of the whole model run on the moved inputs."""
    from tasks.anomaly.task import PROBE_SHUFFLE_SEED, paired_derangement, shuffled_modality_aurocs
    from tasks.common.classification_metrics import auroc
    from tasks.common.image_loading import normalise_images

    val = demo_setup.extras["splits"]["val"]
    task.evaluate(demo_setup, "val")
    probes = task.probe(demo_setup)
    moved = paired_derangement(len(val), PROBE_SHUFFLE_SEED)
    with torch.no_grad():
        model = demo_setup.model.eval()
        image_moved = model(normalise_images(val.images[moved]), val.points, val.point_mask).logits
        points_moved = model(normalise_images(val.images), val.points[moved], val.point_mask[moved]).logits
    expected = {"image_shuffled/auroc": auroc(image_moved, val.scene_labels),
                "points_shuffled/auroc": auroc(points_moved, val.scene_labels)}
    assert expected["image_shuffled/auroc"] != expected["points_shuffled/auroc"]
    for name, value in expected.items():
        assert probes[name] == pytest.approx(value, abs=1e-9), name
    # several groups of scenes (the module, not the package's `task` object of the same name)
    monkeypatch.setattr(sys.modules["tasks.anomaly.task"], "EVAL_BATCH_SIZE", 8)
    encoded_again = shuffled_modality_aurocs(demo_setup.model, val, demo_setup.device)
    assert encoded_again == pytest.approx(expected, abs=1e-9)


def test_a_model_blind_to_its_points_scores_the_same_with_them_shuffled(demo_dir):
    """Cut every path from the points to the score: points_shuffled/auroc is then val/auroc
    exactly (the guard's 'ignored' evidence), while shuffling the images still moves it."""
    torch.manual_seed(0)
    setup = task.build(AnomalyConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu"))
    model = setup.model
    with torch.no_grad():
        for layer in (model.point_tokens, model.point_embedding[0]):
            layer.weight.zero_()
            layer.bias.zero_()
    metrics = task.evaluate(setup, "val")
    probes = task.probe(setup)
    assert probes["points_shuffled/auroc"] == metrics["auroc"]
    assert probes["image_shuffled/auroc"] != metrics["auroc"]


def test_the_probe_reuses_evaluate_until_the_model_trains(demo_dir):
    torch.manual_seed(0)
    setup = task.build(AnomalyConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu"))
    cache = setup.extras["model_outputs"]

    def kept_prediction():
        return cache.get_or_compute("val_prediction", lambda: pytest.fail("no val prediction kept"))

    task.evaluate(setup, "val")
    kept = kept_prediction()
    assert kept.features is not None and len(kept.features.point_tokens) == len(setup.extras["splits"]["val"])
    task.probe(setup)
    assert kept_prediction() is kept
    setup.model.train()
    task.training_step(setup, next(iter(setup.train_batches)))
    task.probe(setup)
    assert kept_prediction() is not kept
