"""The anomaly task end to end on small real data: readers, label rule, layout errors, train, evaluate."""

from __future__ import annotations

import csv
import math
import shutil
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
from tasks.anomaly.manifest import COLUMNS, read_manifest
from tasks.anomaly.ply import read_ply_points, write_ply_points
from tasks.base import DataError, Task

SMALL_CONFIG = dict(batch_size=16, num_points=64, embed_dim=16, point_hidden_dim=16, attention_heads=2)


SMALL_SPLITS = {"train": 40, "val": 20, "test": 10}


@pytest.fixture(scope="module")
def small_demo_dir(tmp_path_factory) -> Path:
    """The demo generator with fewer scenes per split (the full demo has 200/50/50)."""
    root = tmp_path_factory.mktemp("anomaly_small_demo")
    demo.make_demo_data(root, seed=0, split_sizes=SMALL_SPLITS)
    return root


@pytest.fixture(scope="module")
def demo_dir(small_demo_dir) -> Path:
    return small_demo_dir


@pytest.fixture
def copy_of_demo(small_demo_dir, tmp_path) -> Path:
    root = tmp_path / "demo"
    shutil.copytree(small_demo_dir, root)
    return root


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


def test_truncated_binary_ply_is_caught_by_check_data(copy_of_demo):
    entry = next(e for e in read_manifest(copy_of_demo) if e.points.suffix == ".ply"
                 and b"binary" in e.points.read_bytes()[:60])
    entry.points.write_bytes(entry.points.read_bytes()[:-10])
    with pytest.raises(DataError, match=rf"{entry.points.name}.*truncated"):
        task.check_data(copy_of_demo)


def test_truncated_npy_point_cloud_is_caught_by_check_data(copy_of_demo):
    entry = next(e for e in read_manifest(copy_of_demo) if e.points.suffix == ".npy")
    entry.points.write_bytes(entry.points.read_bytes()[:-64])
    with pytest.raises(DataError, match=rf"{entry.points.name}.*{entry.scene_id}.*truncated"):
        task.check_data(copy_of_demo)


def test_demo_mixes_npy_binary_ply_and_ascii_ply(demo_dir):
    suffixes = [entry.points.suffix for entry in read_manifest(demo_dir)]
    assert suffixes.count(".ply") == len(suffixes) // 5
    headers = {e.points.read_bytes()[:40] for e in read_manifest(demo_dir) if e.points.suffix == ".ply"}
    assert any(b"binary_little_endian" in h for h in headers) and any(b"ascii" in h for h in headers)


# --- scene labels: from the point labels by the rule, never invented --------------------------


def test_scene_label_rule_counts_anomalous_points():
    labels = np.zeros(100, dtype=np.uint8)
    labels[:4] = 1
    assert data.scene_label(labels, min_anomalous_points=5) == 0
    labels[4] = 1
    assert data.scene_label(labels, min_anomalous_points=5) == 1
    assert data.scene_label(labels, min_anomalous_points=6) == 0


def test_loaded_scene_labels_follow_the_point_label_files_deterministically(demo_dir):
    """The seed-report bug "a scene label drawn at random": every loaded label must equal the
    rule applied to that scene's label file, identically on every load."""
    first = data.load_split(demo_dir, "val", 32, 64, min_anomalous_points=5)
    second = data.load_split(demo_dir, "val", 32, 64, min_anomalous_points=5)
    assert torch.equal(first.scene_labels, second.scene_labels)
    entries = {e.scene_id: e for e in read_manifest(demo_dir)}
    for scene_id, label in zip(first.scene_ids, first.scene_labels.tolist()):
        counted = int(np.load(entries[scene_id].labels).sum())
        assert label == float(counted >= 5), scene_id
    assert 0 < first.scene_labels.mean() < 1
    # stray labels under the threshold exist in the demo and do not make a scene anomalous
    assert ((first.anomalous_point_counts > 0) & (first.scene_labels == 0)).any()
    # the threshold is the config's: above every anomaly's size, no scene is anomalous
    strict = data.load_split(demo_dir, "val", 32, 64, min_anomalous_points=10_000)
    assert strict.scene_labels.sum() == 0


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_scene_without_labels_raises_naming_the_scene(copy_of_demo, damage):
    entry = read_manifest(copy_of_demo)[3]
    if damage == "missing":
        entry.labels.unlink()
    else:
        np.save(entry.labels, np.zeros(0, dtype=np.uint8))
    with pytest.raises(DataError, match=entry.scene_id):
        task.check_data(copy_of_demo)
    with pytest.raises(DataError, match=entry.scene_id):
        data.load_split(copy_of_demo, entry.split, 32, 64, 5)


def test_label_count_must_match_point_count(copy_of_demo):
    entry = read_manifest(copy_of_demo)[0]
    np.save(entry.labels, np.zeros(7, dtype=np.uint8))
    with pytest.raises(DataError, match=r"7 labels for \d+ points"):
        task.check_data(copy_of_demo)


def test_labels_other_than_zero_and_one_are_refused(copy_of_demo):
    entry = read_manifest(copy_of_demo)[0]
    count = len(np.load(entry.labels))
    np.save(entry.labels, np.full(count, 2, dtype=np.int64))
    with pytest.raises(DataError, match="other than 0 and 1"):
        data.load_split(copy_of_demo, entry.split, 32, 64, 5)


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


def test_parquet_manifest_reads_like_the_csv(copy_of_demo):
    rows = manifest_rows(copy_of_demo)
    pq.write_table(pa.Table.from_pylist(rows), copy_of_demo / "manifest.parquet")
    from_csv = read_manifest(copy_of_demo)
    (copy_of_demo / "manifest.csv").unlink()
    assert read_manifest(copy_of_demo) == from_csv
    task.check_data(copy_of_demo)


def test_empty_or_missing_data_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="missing or empty"):
        task.check_data(tmp_path / "nowhere")
    (tmp_path / "stray.txt").write_text("x")
    with pytest.raises(DataError, match=r"no manifest\.csv or manifest\.parquet"):
        task.check_data(tmp_path)


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
def test_manifest_problems_are_one_line_errors(copy_of_demo, edit, message):
    rows = edit(manifest_rows(copy_of_demo))
    with (copy_of_demo / "manifest.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match=message) as raised:
        task.check_data(copy_of_demo)
    assert "\n" not in str(raised.value)


def test_unreadable_image_and_missing_points_name_the_file(copy_of_demo):
    entries = read_manifest(copy_of_demo)
    entries[0].image.write_bytes(b"not a png")
    with pytest.raises(DataError, match=rf"{entries[0].image.name}.*unreadable"):
        task.check_data(copy_of_demo)
    Image.new("RGB", (8, 8)).save(entries[0].image)
    entries[1].points.unlink()
    with pytest.raises(DataError, match=rf"{entries[1].points.name}.*missing"):
        task.check_data(copy_of_demo)


# --- demo -> check -> build -> train step -> evaluate / probe ----------------------------------


def test_demo_is_deterministic_in_seed_and_has_about_a_third_anomalous(demo_dir, small_demo_dir, tmp_path):
    demo.make_demo_data(tmp_path / "again", seed=0, split_sizes=SMALL_SPLITS)
    for path in sorted(small_demo_dir.rglob("*.*")):
        assert (tmp_path / "again" / path.relative_to(small_demo_dir)).read_bytes() == path.read_bytes()
    demo.make_demo_data(tmp_path / "other", seed=1, split_sizes=SMALL_SPLITS)
    first = read_manifest(small_demo_dir)[0]
    assert (tmp_path / "other" / first.points.relative_to(small_demo_dir)).read_bytes() != first.points.read_bytes()
    train = data.load_split(demo_dir, "train", 32, 64, 5)
    assert len(train) == SMALL_SPLITS["train"] and 0.3 <= train.scene_labels.mean() <= 0.4


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
