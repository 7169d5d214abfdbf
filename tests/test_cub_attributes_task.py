"""The cub_attributes task end to end on its demo data: build, train, evaluate, probe, unfreeze."""

from __future__ import annotations

import math
from fnmatch import fnmatch

import pytest
import torch

from orchestrator.unfreezing import param_groups
from tasks.base import Task
from tasks.common.image_encoders import SmallCNN
from tasks.cub_attributes import CubAttributesConfig, demo, task
from tasks.cub_attributes import data as cub
from tasks.cub_attributes.attribute_labels import NOT_VISIBLE
from tasks.cub_attributes.splits import SPLITS
from tasks.cub_attributes.task import load_split

SMALL_CONFIG = dict(batch_size=32, embed_dim=16, attribute_hidden_dim=16, gate_hidden_dim=8)


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Parsed-attribute caches of this module's datasets go to a temporary directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHESTRATE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cub_demo")
    # encoders=False: this module's private cache would pretrain the image encoder again
    demo.make_demo_data(root, seed=0, encoders=False)
    return root


@pytest.fixture(scope="module")
def demo_setup(demo_dir):
    torch.manual_seed(0)
    return task.build(CubAttributesConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu"))


def assert_within_bounds(prefix: str, values: dict[str, float]) -> None:
    for key, value in values.items():
        full_key = f"{prefix}/{key}"
        bounds = [task.value_bounds[p] for p in task.value_bounds if fnmatch(full_key, p)]
        assert bounds, f"{full_key} has no declared bounds"
        assert math.isfinite(value), full_key
        assert all(low <= value <= high for low, high in bounds), (full_key, value, bounds)


def test_task_satisfies_the_interface():
    assert isinstance(task, Task)
    assert (task.name, task.metric, task.mode) == ("cub_attributes", "val/accuracy", "max")
    with pytest.raises(ValueError):
        CubAttributesConfig(backbone_lr_scale=0.1)  # the backbone scale is unfreeze_lr_scale
    with pytest.raises(ValueError):
        CubAttributesConfig(val_fraction=1.0)


def test_demo_data_is_deterministic_in_the_tarball_layout(tmp_path, demo_dir):
    report = task.check_data(demo_dir)
    assert report.layout == "CUB-200-2011, unpacked tarball (CUB_200_2011/ one level down)"
    assert report.splits == {"train": 300, "val": 100, "test": 200}
    assert not report.problems and not report.leaks  # noisy per-image annotations: no leak
    demo.make_demo_data(tmp_path, seed=0, encoders=False)
    dataset = "CUB_200_2011"
    for name in (cub.IMAGES_FILE, cub.SPLIT_FILE, cub.ATTRIBUTE_LABELS_FILE, "../attributes.txt"):
        assert (tmp_path / dataset / name).read_bytes() == (demo_dir / dataset / name).read_bytes()
    first_image = (demo_dir / dataset / cub.IMAGES_FILE).read_text().split()[1]
    assert (tmp_path / dataset / "images" / first_image).read_bytes() == (
        demo_dir / dataset / "images" / first_image
    ).read_bytes()
    annotations = cub.read_annotations(demo_dir)
    assert annotations.num_classes == 20 and annotations.attribute_names == demo.ATTRIBUTE_NAMES
    assert len(annotations.image_ids) == 20 * demo.IMAGES_PER_CLASS
    lines = (demo_dir / dataset / cub.ATTRIBUTE_LABELS_FILE).read_text().splitlines()
    assert sum(len(line.split()) > 5 for line in lines) == demo.MALFORMED_LINES
    assert (annotations.certainty == NOT_VISIBLE).mean() > 0.1  # attributes partly missing


def test_each_modality_alone_leaves_classes_ambiguous_but_together_identifies_them():
    classes = demo.demo_classes()
    drawn = {(c["group"], c["crown"]) for c in classes}
    annotated = {frozenset(demo.class_attributes(c)) for c in classes}
    assert len(drawn) == len(annotated) == len(classes) // 2
    assert len({(c["group"], c["crown"], frozenset(demo.class_attributes(c))) for c in classes}) == 20


def test_training_step_gives_finite_loss_and_gradients_in_every_part(demo_setup):
    model = demo_setup.model
    model.train()
    model.zero_grad()
    losses = task.training_step(demo_setup, next(iter(demo_setup.train_batches)))
    assert set(losses) == {"loss", "accuracy"}
    assert torch.isfinite(losses["loss"]) and losses["loss"].item() > 0
    losses["loss"].backward()
    parts = (model.image_encoder, model.image_head, model.attribute_encoder, model.fusion)
    for part in (*parts, model.classifier):
        gradients = [p.grad for p in part.parameters() if p.grad is not None]
        assert gradients and any(g.abs().sum() > 0 for g in gradients), type(part).__name__


def test_evaluate_and_probe_report_every_key_within_bounds(demo_setup):
    for split in ("val", "test"):
        metrics = task.evaluate(demo_setup, split)
        assert set(metrics) == {
            "accuracy", "top5_accuracy", "majority_rate", "chance/accuracy", "chance/top5_accuracy",
            "samples",
        }
        assert metrics["chance/accuracy"] == pytest.approx(1 / 20)
        assert metrics["samples"] == {"val": 100, "test": 200}[split]
        assert_within_bounds(split, metrics)
    probes = task.probe(demo_setup)
    assert {
        "image/offdiag_cosine", "image/dim_std", "image/dim", "attributes/offdiag_cosine",
        "attributes/dim_std", "image/attention_weight", "attributes/attention_weight",
        "image_shuffled/accuracy", "attributes_shuffled/accuracy",
    } <= set(probes)
    assert probes["image/dim"] == SMALL_CONFIG["embed_dim"]
    assert probes["image/attention_weight"] + probes["attributes/attention_weight"] == pytest.approx(1.0)
    assert_within_bounds("probe", probes)


def test_val_is_a_stratified_slice_of_training_images_and_test_is_held_out(demo_dir, demo_setup):
    annotations = demo_setup.extras["annotations"]
    config = demo_setup.extras["config"]
    rows = {
        split: set(annotations.split_rows(split, config.val_fraction, config.val_split_seed))
        for split in SPLITS
    }
    assert not rows["train"] & rows["val"] and not rows["val"] & rows["test"]
    assert len(rows["val"]) == 20 * round(config.val_fraction * demo.TRAINING_IMAGES_PER_CLASS)
    assert len(demo_setup.extras["splits"]["val"].labels) == len(rows["val"])


def test_shuffled_image_probe_equals_accuracy_when_the_gate_ignores_images(demo_dir):
    setup = task.build(CubAttributesConfig(**SMALL_CONFIG), demo_dir, "cpu")
    last = setup.model.fusion.gate[2]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([-50.0, 50.0]))  # all attention on the attributes
    accuracy = task.evaluate(setup, "val")["accuracy"]
    probes = task.probe(setup)
    assert probes["image_shuffled/accuracy"] == accuracy
    assert probes["attributes/attention_weight"] == pytest.approx(1.0)


def test_evaluate_leaves_the_model_in_training_mode(demo_setup):
    demo_setup.model.train()
    task.evaluate(demo_setup, "val")
    task.probe(demo_setup)
    assert demo_setup.model.training and demo_setup.model.classifier.training


def test_backbone_from_random_init_is_not_handed_over(demo_setup):
    assert demo_setup.unfreezable_blocks == {}


def test_pretrained_backbone_trains_at_learning_rate_times_unfreeze_lr_scale(tmp_path, demo_dir):
    torch.save(SmallCNN().state_dict(), tmp_path / "backbone.pt")
    config = CubAttributesConfig(
        **SMALL_CONFIG, image_weights=str(tmp_path / "backbone.pt"), learning_rate=1e-3, unfreeze_lr_scale=0.1
    )
    setup = task.build(config, demo_dir, "cpu")
    blocks = setup.unfreezable_blocks["image"]
    assert blocks == setup.model.image_encoder.blocks_top_first()
    groups = {group["name"]: group for group in param_groups(setup.model, setup.unfreezable_blocks, config)}
    assert groups["encoder_blocks"]["lr"] == pytest.approx(1e-4)
    assert groups["heads"]["lr"] == pytest.approx(1e-3)
    backbone = {id(p) for p in setup.model.image_encoder.parameters()}
    assert {id(p) for p in groups["encoder_blocks"]["params"]} == backbone
    assert not backbone & {id(p) for p in groups["heads"]["params"]}


def test_build_is_deterministic_in_the_config(demo_dir):
    config = CubAttributesConfig(**SMALL_CONFIG, seed=3)
    first, second = task.build(config, demo_dir, "cpu"), task.build(config, demo_dir, "cpu")
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    first_batch, second_batch = next(iter(first.train_batches)), next(iter(second.train_batches))
    assert all(torch.equal(a, b) for a, b in zip(first_batch, second_batch))


def test_missing_image_weights_file_is_one_line(tmp_path, demo_dir):
    with pytest.raises(ValueError, match="does not exist") as error:
        task.build(CubAttributesConfig(image_weights=str(tmp_path / "absent.pt")), demo_dir, "cpu")
    assert "\n" not in str(error.value)


def test_plausible_max_bounds_only_the_target_accuracy():
    assert task.plausible_max == {"val/accuracy": 0.95}


def test_max_samples_per_split_loads_the_first_images_of_each_split(demo_dir):
    config = CubAttributesConfig(**SMALL_CONFIG, max_samples_per_split=7)
    setup = task.build(config, demo_dir, "cpu")
    assert len(setup.train_batches.dataset) == 7
    whole = CubAttributesConfig(**SMALL_CONFIG)
    annotations = setup.extras["annotations"]
    for split in ("val", "test"):
        assert task.evaluate(setup, split)["samples"] == 7
        cut, full = load_split(annotations, split, config), load_split(annotations, split, whole)
        assert torch.equal(cut.labels, full.labels[:7]) and torch.equal(cut.images, full.images[:7])
