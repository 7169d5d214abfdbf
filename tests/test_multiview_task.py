"""The multiview task end to end on small real data: the manifest route (problems, split leaks),
the demo render tree, build, train, evaluate, probe."""

from __future__ import annotations

import csv
import math
import re
from fnmatch import fnmatch
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torch import nn

from orchestrator.spaces import check_against_task, load_spec
from tasks.base import DataError, Task
from tasks.common.data_problems import ProblemList
from tasks.common.small_vit import SmallViT
from tasks.multiview import MultiviewConfig, data, task
from tasks.multiview.layouts import manifest as manifest_layout
from tasks.multiview.layouts import mvcnn
from tasks.multiview.loading import load_split
from tasks.multiview.model import ViewEncoder
from tasks.multiview.pairs import ViewPair, first_pairs

SMALL_CONFIG = dict(batch_size=16, embed_dim=16)
REPO = Path(__file__).resolve().parent.parent

# --- a tiny hand-made dataset -----------------------------------------------------------------
# Image k is a solid colour whose red channel encodes k, so a stub model can map it to a chosen
# embedding. Train uses images of its own (ids 10-13): no image is in two splits. Unit vectors
# per image id:
EMBEDDINGS = {
    0: (1.0, 0.0, 0.0),  # A1   val: object A seen twice (ids 0 and 1, identical vectors)
    1: (1.0, 0.0, 0.0),  # A2
    2: (0.0, 0.6, 0.8),  # B1   val: object B
    3: (0.6, 0.8, 0.0),  # B2
    4: (1.0, 0.0, 0.0),  # C1   test
    5: (0.0, 1.0, 0.0),  # C2
    6: (0.0, 0.0, 1.0),  # D1
    7: (0.0, 0.0, 1.0),  # D2
    8: (-0.8, 0.0, 0.6),  # N1
    9: (0.0, 0.8, -0.6),  # N2
    10: (1.0, 0.0, 0.0),  # E1   train
    11: (0.0, 1.0, 0.0),  # E2
    12: (0.0, 0.0, 1.0),  # F1
    13: (0.6, 0.8, 0.0),  # F2
}
# (view_a id, view_b id, pair_label, split). Val cosines: (A1,A2) 1.0, (B1,B2) 0.48,
# (A1,B2) 0.6, (B1,A2) 0.0 -> best val threshold 0.24 (accuracy 3/4). Test cosines: (C1,C2)
# 0.0, (D1,D2) 1.0 positives; (C1,N1) -0.8, (D1,N2) -0.6 negatives: at the val threshold 0.24
# the (C1,C2) positive is missed (accuracy 3/4), though a test-chosen threshold would score 1.
TINY_PAIRS = [
    (10, 11, 1, "train"), (12, 13, 1, "train"), (10, 13, 0, "train"),
    (0, 1, 1, "val"), (2, 3, 1, "val"), (0, 3, 0, "val"), (2, 1, 0, "val"),
    (4, 5, 1, "test"), (6, 7, 1, "test"), (4, 8, 0, "test"), (6, 9, 0, "test"),
]


def image_path(image_id: int) -> str:
    return f"views/img_{image_id}.png"


def write_tiny_dataset(root: Path, pairs=TINY_PAIRS) -> list[list]:
    """Images and manifest.csv for `pairs`; returns the manifest rows (header first)."""
    (root / "views").mkdir(parents=True, exist_ok=True)
    for image_id in EMBEDDINGS:
        Image.new("RGB", (20, 20), (10 * image_id + 5, 0, 0)).save(root / image_path(image_id))
    rows = [list(manifest_layout.COLUMNS)] + [
        [f"p{k}", image_path(a), image_path(b), label, split]
        for k, (a, b, label, split) in enumerate(pairs)
    ]
    write_manifest(root, rows)
    return rows


def write_manifest(root: Path, rows: list[list]) -> None:
    with (root / manifest_layout.MANIFEST_CSV).open("w", newline="") as file:
        csv.writer(file).writerows(rows)


class StubEncoder(nn.Module):
    """Reads the image id from the red channel and returns its hand-chosen unit vector."""

    def __init__(self):
        super().__init__()
        self.table = torch.tensor([EMBEDDINGS[k] for k in sorted(EMBEDDINGS)])

    def encode_views(self, images: torch.Tensor) -> torch.Tensor:
        red = (images[:, 0, 0, 0] * 0.229 + 0.485) * 255  # undo the ImageNet normalisation
        return self.table[torch.div(red.round().long(), 10, rounding_mode="floor")]


def assert_within_bounds(prefix: str, values: dict[str, float]) -> None:
    for key, value in values.items():
        full_key = f"{prefix}/{key}"
        bounds = [task.value_bounds[p] for p in task.value_bounds if fnmatch(full_key, p)]
        assert bounds, f"{full_key} has no declared bounds"
        assert math.isfinite(value), full_key
        assert all(low <= value <= high for low, high in bounds), (full_key, value, bounds)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multiview_demo")
    task.make_demo_data(root, seed=0)
    return root


@pytest.fixture(scope="module")
def demo_setup(demo_dir):
    return task.build(MultiviewConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu"))


# --- the manifest route: every problem listed, split leaks refused ---------------------------


def problems_of(root: Path) -> list[str]:
    """check_data's problems, each asserted to be one line."""
    report = task.check_data(root)
    assert all("\n" not in line for line in report.problems)
    return report.problems


def assert_one_problem_matches(root: Path, pattern: str) -> None:
    problems = problems_of(root)
    assert sum(bool(re.search(pattern, line)) for line in problems) == 1, (pattern, problems)


def read_rows(root: Path) -> list[manifest_layout.PairRow]:
    problems = ProblemList()
    rows, _ = manifest_layout.read_manifest(root, problems)
    assert not problems, problems.lines
    return rows


def test_tiny_dataset_passes_and_parquet_manifest_reads_the_same(tmp_path):
    rows = write_tiny_dataset(tmp_path)
    report = task.check_data(tmp_path)
    assert not report.problems and not report.leaks, (report.problems, report.leaks)
    assert report.layout == manifest_layout.LAYOUT
    assert (report.splits, report.unit) == ({"train": 3, "val": 4, "test": 4}, "pairs")
    from_csv = read_rows(tmp_path)
    (tmp_path / manifest_layout.MANIFEST_CSV).unlink()
    header, *body = rows
    columns = {name: [row[k] for row in body] for k, name in enumerate(header)}
    pq.write_table(pa.table(columns), tmp_path / manifest_layout.MANIFEST_PARQUET)
    assert not task.check_data(tmp_path).problems
    from_parquet = read_rows(tmp_path)
    assert [(r.pair_id, r.view_a, r.view_b, r.pair_label, r.split) for r in from_parquet] == [
        (r.pair_id, r.view_a, r.view_b, r.pair_label, r.split) for r in from_csv
    ]


def test_bad_pair_label_in_parquet_names_the_row(tmp_path):
    rows = write_tiny_dataset(tmp_path)
    (tmp_path / manifest_layout.MANIFEST_CSV).unlink()
    header, *body = rows
    body[2][3] = 3
    columns = {name: [row[k] for row in body] for k, name in enumerate(header)}
    pq.write_table(pa.table(columns), tmp_path / manifest_layout.MANIFEST_PARQUET)
    assert_one_problem_matches(tmp_path, r"manifest\.parquet row 3: pair_label 3 is not 0 or 1")


def test_missing_image_names_the_row_and_the_file(tmp_path):
    write_tiny_dataset(tmp_path)
    (tmp_path / image_path(7)).unlink()
    assert_one_problem_matches(tmp_path, r"manifest\.csv:10: view_b image .*img_7\.png does not exist")


def test_unreadable_image_is_named_by_check_data(tmp_path):
    write_tiny_dataset(tmp_path)
    (tmp_path / image_path(2)).write_bytes(b"not an image at all")
    assert_one_problem_matches(tmp_path, r"img_2\.png: unreadable image")


def test_truncated_image_is_named_when_decoded(tmp_path):
    write_tiny_dataset(tmp_path)
    path = tmp_path / image_path(4)
    Image.new("RGB", (64, 64), (45, 0, 0)).save(path)
    path.write_bytes(path.read_bytes()[:60])  # header intact, pixels cut off
    assert not problems_of(tmp_path)  # headers only: cheap, and this header is fine
    plan = data.plan_dataset(tmp_path, MultiviewConfig())
    with pytest.raises(DataError, match=r"img_4\.png: cannot decode image"):
        load_split(plan.root, plan.pairs["test"], 16)


@pytest.mark.parametrize(
    "bad_value, pattern",
    [
        ("2", r"manifest\.csv:4: pair_label '2' is not 0 or 1"),
        ("yes", r"manifest\.csv:4: pair_label 'yes' is not 0 or 1"),
        ("", r"manifest\.csv:4: pair_label '' is not 0 or 1"),
    ],
)
def test_pair_label_outside_0_1_names_the_row(tmp_path, bad_value, pattern):
    rows = write_tiny_dataset(tmp_path)
    rows[3][3] = bad_value
    write_manifest(tmp_path, rows)
    assert_one_problem_matches(tmp_path, pattern)


@pytest.mark.parametrize("split, missing", [("val", "negative"), ("test", "positive")])
def test_split_without_positives_or_negatives_is_refused(tmp_path, split, missing):
    label = 0 if missing == "negative" else 1
    pairs = [pair for pair in TINY_PAIRS if not (pair[3] == split and pair[2] == label)]
    write_tiny_dataset(tmp_path, pairs)
    assert_one_problem_matches(tmp_path, rf"split {split} has no {missing} \(pair_label {label}\) pair")


def test_training_split_needs_two_positive_pairs(tmp_path):
    write_tiny_dataset(tmp_path, [p for p in TINY_PAIRS if p[:3] != (12, 13, 1)])
    assert_one_problem_matches(tmp_path, r"split train has 1 positive pair")


def test_every_bad_row_is_listed_not_only_the_first(tmp_path):
    rows = write_tiny_dataset(tmp_path)
    rows[5][4] = "validation"
    rows[6][0] = rows[2][0]
    rows[8][3] = "maybe"
    write_manifest(tmp_path, rows)
    (tmp_path / image_path(9)).unlink()
    problems = problems_of(tmp_path)
    for pattern in (
        r"manifest\.csv:6: split 'validation' is not one of",
        r"manifest\.csv:7: pair_id 'p1' already used at .*:3",
        r"manifest\.csv:9: pair_label 'maybe' is not 0 or 1",
        r"manifest\.csv:12: view_b image .*img_9\.png does not exist",
    ):
        assert sum(bool(re.search(pattern, line)) for line in problems) == 1, (pattern, problems)


def test_missing_columns_are_named(tmp_path):
    rows = write_tiny_dataset(tmp_path)
    write_manifest(tmp_path, [[name for name in rows[0] if name != "split"]])
    assert problems_of(tmp_path) == [
        f"{tmp_path / 'manifest.csv'}: missing column(s) split; the header must name "
        "pair_id,view_a,view_b,pair_label,split"
    ]


@pytest.mark.parametrize("layout", ["empty", "header_only"])
def test_unusable_directory_is_one_problem_naming_it(tmp_path, layout):
    if layout != "empty":
        rows = write_tiny_dataset(tmp_path)
        write_manifest(tmp_path, rows[:1])
    problems = problems_of(tmp_path)
    assert len(problems) == 1 and str(tmp_path) in problems[0]


def test_an_image_in_two_splits_of_a_manifest_is_a_leak_named_in_one_line(tmp_path):
    """The issue's case: a random per-pair split shares image files between train and val."""
    write_tiny_dataset(tmp_path, [(0, 1, 1, "train"), (2, 3, 1, "train")] + TINY_PAIRS[3:])
    report = task.check_data(tmp_path)
    assert not report.problems
    assert report.leaks == [
        f"{tmp_path / 'manifest.csv'}: image views/img_0.png is in train and val (4 images in more "
        "than one split); split by object so that no image or object is in two splits"
    ]
    with pytest.raises(DataError, match="is in train and val"):
        report.raise_if_unusable()


def write_object_manifest(root: Path, rows: list[tuple]) -> None:
    """A manifest with object columns: rows of (view_a id, view_b id, label, split, object_a, object_b)."""
    write_tiny_dataset(root)
    header = list(manifest_layout.COLUMNS) + list(manifest_layout.OBJECT_COLUMNS)
    body = [
        [f"p{k}", image_path(a), image_path(b), label, split, object_a, object_b]
        for k, (a, b, label, split, object_a, object_b) in enumerate(rows)
    ]
    write_manifest(root, [header] + body)


OBJECT_ROWS = [
    (10, 11, 1, "train", "E", "E"), (12, 13, 1, "train", "F", "F"),
    (0, 1, 1, "val", "A", "A"), (2, 3, 1, "val", "B", "B"), (0, 3, 0, "val", "A", "B"),
    (4, 5, 1, "test", "C", "C"), (6, 7, 1, "test", "D", "D"), (4, 8, 0, "test", "C", "N"),
]


def test_manifest_object_columns_refuse_an_object_in_two_splits_even_with_other_images(tmp_path):
    write_object_manifest(tmp_path, OBJECT_ROWS)
    report = task.check_data(tmp_path)
    assert not report.problems and not report.leaks, (report.problems, report.leaks)
    assert any("object_a/object_b columns" in line for line in report.sources)
    # val's object A seen again in train, through image files of its own
    write_object_manifest(tmp_path, OBJECT_ROWS + [(12, 10, 0, "train", "F", "A")])
    leaks = task.check_data(tmp_path).leaks
    assert len(leaks) == 1
    assert "object A is in train and val" in leaks[0] and "image" not in leaks[0].split(";")[0]


def test_manifest_object_columns_must_agree_with_pair_label(tmp_path):
    wrong = [(10, 12, 1, "train", "E", "F"), (12, 13, 0, "train", "F", "F")]
    write_object_manifest(tmp_path, OBJECT_ROWS + wrong)
    problems = problems_of(tmp_path)
    assert problems[0].endswith(
        "manifest.csv:10: a positive (pair_label 1) names two objects (E, F); fix pair_label or the objects"
    )
    assert problems[1].endswith("manifest.csv:11: a negative (pair_label 0) names one object twice (F, F); "
                                "fix pair_label or the objects")


# --- metrics through the task, on hand-chosen embeddings --------------------------------------


def test_val_accuracy_is_thresholded_cosine_against_pair_labels_and_test_reuses_val_threshold(
    tmp_path,
):
    write_tiny_dataset(tmp_path)
    setup = task.build(MultiviewConfig(batch_size=2), tmp_path, torch.device("cpu"))
    setup.model = StubEncoder()
    val = task.evaluate(setup, "val")
    assert val["threshold"] == pytest.approx(0.24, abs=1e-6)
    assert setup.extras["val_threshold"] == val["threshold"]
    # Argmax over the batch finds every view_a's own view_b (1.0 > 0.6, 0.48 > 0.0) and would
    # call that a perfect accuracy; at the threshold 0.24 the (A1, B2) negative passes: 3/4.
    view_a, view_b = StubEncoder().table[[0, 2]], StubEncoder().table[[1, 3]]
    assert (view_a @ view_b.T).argmax(dim=1).tolist() == [0, 1]
    assert val["accuracy"] == pytest.approx(3 / 4)
    # R@1 both ways: rows both right; by column B2's nearest view_a is A1 (0.6 > 0.48)
    assert val["r1"] == pytest.approx((1 + 1 / 2) / 2)
    assert val["auroc"] == pytest.approx(3 / 4)
    assert (val["positive_similarity"], val["negative_similarity"]) == pytest.approx((0.74, 0.3))
    assert (val["majority_rate"], val["chance/auroc"], val["chance/r1"]) == (0.5, 0.5, 0.5)

    test = task.evaluate(setup, "test")
    assert test["threshold"] == val["threshold"]  # not the test-optimal -0.3
    assert test["accuracy"] == pytest.approx(3 / 4)

    fresh = task.build(MultiviewConfig(batch_size=2), tmp_path, torch.device("cpu"))
    fresh.model = StubEncoder()
    assert task.evaluate(fresh, "test")["threshold"] == val["threshold"]  # val evaluated first


class CountingStubEncoder(StubEncoder):
    """StubEncoder that counts its eval-mode passes (the split encodings, not training steps)."""

    def __init__(self):
        super().__init__()
        self.eval_passes = 0

    def encode_views(self, images: torch.Tensor) -> torch.Tensor:
        self.eval_passes += not self.training
        return super().encode_views(images)


def test_evaluate_encodes_each_time_and_probe_and_figures_reuse_it_until_a_training_step(tmp_path):
    write_tiny_dataset(tmp_path)
    setup = task.build(MultiviewConfig(batch_size=2), tmp_path, torch.device("cpu"))
    setup.model = encoder = CountingStubEncoder()
    task.evaluate(setup, "val")
    task.evaluate(setup, "val")  # weights may have been loaded since: evaluate never reuses
    assert encoder.eval_passes == 2
    task.probe(setup)
    task.figures(setup, "val")
    assert encoder.eval_passes == 2
    task.evaluate(setup, "test")
    task.figures(setup, "test")  # each split keeps its own embeddings
    assert encoder.eval_passes == 3
    encoder.train()
    task.training_step(setup, next(iter(setup.train_batches)))
    task.probe(setup)
    task.figures(setup, "test")
    assert encoder.eval_passes == 5


# --- the task on demo data --------------------------------------------------------------------


def test_task_satisfies_the_interface_and_its_search_space_fits():
    assert isinstance(task, Task)
    assert (task.name, task.metric, task.mode) == ("multiview", "val/auroc", "max")
    for bad in (dict(consistency_weight=-0.1), dict(temprature=0.1), dict(hard_negative_ratio=2)):
        with pytest.raises(ValueError):
            MultiviewConfig(**bad)
    with pytest.raises(ValueError, match="vit_patch_size"):
        MultiviewConfig(backbone="small_vit", image_size=30, vit_patch_size=4)
    space = REPO / "search_spaces" / "multiview.yaml"
    spec = load_spec(space)
    assert (spec.metric, spec.mode) == (task.metric, task.mode)
    check_against_task(spec, task.config_model, space)


def test_demo_data_is_an_mvcnn_render_tree_deterministic_and_split_by_object(tmp_path, demo_dir):
    report = task.check_data(demo_dir)
    assert not report.problems and not report.leaks, (report.problems, report.leaks)
    assert report.layout == mvcnn.LAYOUT
    assert report.splits == {"train": 840, "val": 200, "test": 240}
    task.make_demo_data(tmp_path, seed=0)
    names = sorted(path.relative_to(demo_dir).as_posix() for path in demo_dir.rglob("*.png"))
    assert names == sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.png"))
    assert len(names) == 1280 * 4 and all(mvcnn.VIEW_NAME.match(name.rsplit("/", 1)[1]) for name in names)
    name = names[7]
    assert (tmp_path / name).read_bytes() == (demo_dir / name).read_bytes()

    plan = data.plan_dataset(demo_dir, MultiviewConfig())
    objects = {
        split: {pair.object_a for pair in pairs} | {pair.object_b for pair in pairs}
        for split, pairs in plan.pairs.items()
    }
    assert not (objects["train"] & objects["val"] or objects["train"] & objects["test"]
                or objects["val"] & objects["test"])
    for split in ("val", "test"):
        labels = [pair.label for pair in plan.pairs[split]]
        assert labels.count(1) == labels.count(0) == 2 * report.splits[split]
        negatives = [pair for pair in plan.pairs[split] if pair.label == 0]
        assert sum(pair.class_a == pair.class_b for pair in negatives) == len(negatives) // 2


def test_an_epoch_trains_on_one_positive_pair_of_each_object(demo_setup):
    batches = list(demo_setup.train_batches)
    assert len(batches) == len(demo_setup.train_batches) == 840 // 16  # remainder dropped
    seen = set()
    for images_a, images_b in batches:
        assert images_a.dtype == torch.uint8 and images_a.shape == images_b.shape
        seen |= {bytes(image.numpy()) for image in images_a}
    assert len(seen) == 16 * len(batches)
    sampler = demo_setup.train_batches.batch_sampler
    order = sampler.epoch_order(0)
    assert len(order) == sampler.objects == 840


def test_two_training_steps_give_finite_loss_and_gradients_to_the_shared_backbone(demo_setup):
    model = demo_setup.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = iter(demo_setup.train_batches)
    for _ in range(2):
        optimizer.zero_grad()
        losses = task.training_step(demo_setup, next(batches))
        assert set(losses) == {"loss", "infonce", "consistency", "hard_negative_hinge"}
        assert torch.isfinite(losses["loss"]) and losses["loss"].item() > 0
        losses["loss"].backward()
        for block in (model.backbone.blocks_top_first()[-1], model.head):
            gradients = [p.grad for p in block.parameters() if p.grad is not None]
            assert gradients and any(g.abs().sum() > 0 for g in gradients)
        optimizer.step()


def test_evaluate_and_probe_report_every_key_within_bounds(demo_setup):
    for split in ("val", "test"):
        metrics = task.evaluate(demo_setup, split)
        assert {"auroc", "accuracy", "majority_rate", "threshold", "r1", "positive_similarity",
                "negative_similarity", "chance/auroc", "chance/r1"} <= set(metrics)
        assert metrics["chance/r1"] == pytest.approx(1 / (200 if split == "val" else 240))
        assert metrics["samples"] == len(demo_setup.extras["splits"][split].pair_labels)
        assert_within_bounds(split, metrics)
    probes = task.probe(demo_setup)
    assert {"view_a/offdiag_cosine", "view_b/dim_std", "view_a/dim", "view_a_shuffled/r1",
            "positive_similarity", "negative_similarity"} <= set(probes)
    assert probes["view_a/dim"] == SMALL_CONFIG["embed_dim"]
    assert_within_bounds("probe", probes)


def test_evaluate_leaves_the_model_in_training_mode(demo_setup):
    demo_setup.model.train()
    task.evaluate(demo_setup, "val")
    assert demo_setup.model.training and demo_setup.model.head.training


def test_small_vit_backbone_trains_and_pretrained_weights_expose_blocks(demo_dir, tmp_path):
    config = MultiviewConfig(**SMALL_CONFIG, backbone="small_vit")
    setup = task.build(config, demo_dir, torch.device("cpu"))
    assert isinstance(setup.model.backbone, SmallViT) and setup.unfreezable_blocks == {}
    losses = task.training_step(setup, next(iter(setup.train_batches)))
    losses["loss"].backward()
    assert setup.model.backbone.patch_embedding.projection.weight.grad.abs().sum() > 0

    weights = tmp_path / "vit.pt"
    torch.save(setup.model.backbone.state_dict(), weights)
    pretrained = task.build(
        config.model_copy(update={"backbone_weights": str(weights)}), demo_dir, torch.device("cpu")
    )
    blocks = pretrained.unfreezable_blocks["backbone"]
    backbone: SmallViT = pretrained.model.backbone
    assert blocks == [backbone.encoder.layers[1], backbone.encoder.layers[0], backbone.patch_embedding]
    torch.testing.assert_close(backbone.state_dict(), setup.model.backbone.state_dict())

    with pytest.raises(ValueError, match="does not fit small_vit"):
        task.build(
            config.model_copy(update={"backbone_weights": str(weights), "vit_dim": 32}),
            demo_dir,
            torch.device("cpu"),
        )


def test_a_pretrained_cnn_backbone_is_handed_over_for_unfreezing(demo_dir, tmp_path):
    model = task.build(MultiviewConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu")).model
    weights = tmp_path / "cnn.pt"
    torch.save(model.backbone.state_dict(), weights)
    setup = task.build(
        MultiviewConfig(**SMALL_CONFIG, backbone_weights=str(weights)), demo_dir, torch.device("cpu")
    )
    assert isinstance(setup.model, ViewEncoder)
    assert setup.unfreezable_blocks["backbone"][0] is setup.model.backbone.blocks[-1]


def test_build_refuses_data_problems_but_leaves_split_leaks_to_the_sweep_gate(tmp_path):
    """A leak is refused by `orchestrate sweep` unless --allow-data-leak; build then trains."""
    from tests.fixtures.multiview.trees import mvcnn_name, write_mvcnn_tree, write_view

    leaking = write_mvcnn_tree(tmp_path / "leaking", train=3, test=2, views=3)
    for view in (1, 2):
        write_view(leaking / "chair" / "test" / mvcnn_name("chair", 1, view), "copy", view)
    assert task.check_data(leaking).leaks
    setup = task.build(MultiviewConfig(**SMALL_CONFIG), leaking, torch.device("cpu"))
    assert len(setup.train_batches) == 1

    broken = write_mvcnn_tree(tmp_path / "broken", train=3, test=2, views=3)
    for view in (2, 3):
        (broken / "chair" / "train" / mvcnn_name("chair", 1, view)).unlink()
    with pytest.raises(DataError, match=r"chair_0001\.obj\.shaded_v001\.png: the only view of object"):
        task.build(MultiviewConfig(**SMALL_CONFIG), broken, torch.device("cpu"))


def test_first_pairs_keeps_split_order_and_both_labels():
    pairs = [ViewPair(f"p{i}", f"a{i}", f"b{i}", int(i < 6)) for i in range(10)]  # 6 pos, 4 neg
    assert first_pairs(pairs, None) == pairs and first_pairs(pairs, 10) == pairs
    kept = first_pairs(pairs, 4)
    assert [pair.pair_id for pair in kept] == ["p0", "p1", "p6", "p7"]
    assert [pair.pair_id for pair in first_pairs(pairs, 9)] == [f"p{i}" for i in (0, 1, 2, 3, 4, 6, 7, 8, 9)]
    positives = pairs[:6]
    assert first_pairs(positives, 3) == positives[:3]


def test_max_samples_per_split_loads_the_first_pairs_of_each_split(demo_dir):
    setup = task.build(MultiviewConfig(**SMALL_CONFIG, max_samples_per_split=32), demo_dir, "cpu")
    assert len(setup.train_batches.dataset) == 32  # positive pairs (several per object)
    for split in ("val", "test"):
        metrics = task.evaluate(setup, split)
        labels = setup.extras["splits"][split].pair_labels
        assert metrics["samples"] == len(labels) == 32 and 0 < int(labels.sum()) < 32
