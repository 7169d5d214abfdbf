"""The zh_matching task end to end on a small demo: build, train steps, evaluate, probe, weights."""

from __future__ import annotations

import math
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.base import Task
from tasks.zh_matching import ZhMatchingConfig, data, demo, task
from tasks.zh_matching.model import RegionWordMatcher
from tasks.zh_matching.task import images_to_load
from tasks.zh_matching.vocabulary import build_vocabulary

SMALL_SPLITS = {"train": 48, "val": 12, "test": 10, "testall": 20}
SMALL_CONFIG = dict(batch_size=16, embed_dim=16, word_dim=16)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zh_matching_demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "SPLIT_SIZES", SMALL_SPLITS)  # the real demo is ~145 MB
        task.make_demo_data(root, seed=0)
    return root


@pytest.fixture(scope="module")
def demo_setup(demo_dir):
    return task.build(ZhMatchingConfig(**SMALL_CONFIG), demo_dir, torch.device("cpu"))


def assert_within_bounds(prefix: str, values: dict[str, float]) -> None:
    for key, value in values.items():
        full_key = f"{prefix}/{key}"
        bounds = [bounds for pattern, bounds in task.value_bounds.items() if fnmatch(full_key, pattern)]
        assert bounds, f"{full_key} has no declared bounds"
        assert math.isfinite(value), full_key
        assert all(low <= value <= high for low, high in bounds), (full_key, value, bounds)


def test_task_satisfies_the_interface_and_rejects_bad_configs():
    assert isinstance(task, Task)
    assert (task.name, task.metric, task.mode) == ("zh_matching", "val/mean_r1", "max")
    for bad in ({"loss": "triplet"}, {"similarity": "scan_i2t"}, {"margn": 0.2}, {"temperature": 0}):
        with pytest.raises(ValueError):
            ZhMatchingConfig(**bad)


def test_demo_is_the_real_layout_deterministic_in_seed_and_passes_check(tmp_path, demo_dir):
    report = task.check_data(demo_dir)
    assert report.problems == [] and report.layout.startswith("SCAN/SGRAF precomp, im_div 5")
    assert report.splits == SMALL_SPLITS
    features = np.load(data.features_path(demo_dir, "train"), mmap_mode="r")
    assert features.dtype == np.float32 and features.shape == (48, 36, 2048)
    captions = data.captions_path(demo_dir, "val").read_text(encoding="utf-8").splitlines()
    assert len(captions) == 5 * 12 and len(set(captions[:5])) == 5  # 5 different captions
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "SPLIT_SIZES", SMALL_SPLITS)
        task.make_demo_data(tmp_path / "again", seed=0)
        task.make_demo_data(tmp_path / "other", seed=1)
    for split in data.SPLIT_FILES:
        for path in (data.features_path, data.captions_path):
            assert path(tmp_path / "again", split).read_bytes() == path(demo_dir, split).read_bytes()
    other_seed = data.captions_path(tmp_path / "other", "train").read_bytes()
    assert other_seed != data.captions_path(demo_dir, "train").read_bytes()


def test_default_demo_sizes_are_small_float32():
    assert demo.SPLIT_SIZES == {"train": 240, "val": 100, "test": 50, "testall": 100}
    megabytes = sum(demo.SPLIT_SIZES.values()) * demo.NUM_REGIONS * demo.FEATURE_DIM * 4 / 2**20
    assert megabytes < 145


def test_epoch_visits_each_training_image_once_with_one_of_its_captions(demo_setup):
    seen = []
    for regions, token_ids, lengths in demo_setup.train_batches:
        assert regions.dtype == torch.float32 and regions.shape[1:] == (36, 2048)
        assert token_ids.shape == (len(regions), int(lengths.max()))
        seen.extend(bytes(image[0, :8].numpy()) for image in regions)
    assert len(seen) == len(set(seen)) == 48  # 3 full batches of 16


def test_training_steps_give_finite_positive_loss_and_gradients_everywhere(demo_setup):
    model = demo_setup.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = iter(demo_setup.train_batches)
    for _ in range(2):
        optimizer.zero_grad()
        losses = task.training_step(demo_setup, next(batches))
        assert set(losses) == {"loss", "vse_hinge", "hard_negative_hinge"}
        assert torch.isfinite(losses["loss"]) and losses["loss"].item() >= 0
        losses["loss"].backward()
        for part in (model.region_encoder, model.caption_encoder.embedding, model.caption_encoder.gru):
            gradients = [p.grad for p in part.parameters() if p.grad is not None]
            assert gradients and any(g.abs().sum() > 0 for g in gradients)
        optimizer.step()


@pytest.mark.parametrize("overrides", [
    dict(loss="infonce", hard_negative_ratio=0.5, hard_negative_weight=1.0, hard_negative_margin=2.0),
    dict(similarity="global", max_violation=False),
    dict(aggregation="logsumexp"),
])
def test_each_loss_and_similarity_trains(demo_dir, overrides):
    setup = task.build(ZhMatchingConfig(**SMALL_CONFIG, **overrides), demo_dir, "cpu")
    losses = task.training_step(setup, next(iter(setup.train_batches)))
    assert torch.isfinite(losses["loss"]) and losses["loss"].item() > 0
    if overrides.get("loss") == "infonce":
        assert losses["hard_negative_hinge"].item() > 0
        assert losses["loss"].item() == pytest.approx(
            losses["infonce"].item() + losses["hard_negative_hinge"].item(), rel=1e-5)
    losses["loss"].backward()


def test_evaluate_and_probe_report_every_key_within_bounds(demo_setup):
    for split, images in (("val", 12), ("test", 10), ("testall", 20)):
        metrics = task.evaluate(demo_setup, split)
        assert {"i2t_r1", "t2i_r10", "mean_r1", "rsum", "mrr", "chance/mean_r1"} <= set(metrics)
        assert metrics["chance/mean_r1"] == pytest.approx(1 / images)
        assert metrics["samples"] == images
        assert_within_bounds(split, metrics)
    folds = task.evaluate(demo_setup, "testall")
    assert folds["fold5/chance/mean_r1"] == pytest.approx(1 / 4)  # 5 folds of 4 images
    assert {"fold5/i2t_r1", "fold5/t2i_r10", "fold5/rsum", "fold5/mrr"} <= set(folds)
    probes = task.probe(demo_setup)
    assert {
        "image/offdiag_cosine", "text/dim_std", "image/dim", "image_shuffled/mean_r1",
        "text_shuffled/mean_r1", "positive_similarity", "negative_similarity",
    } <= set(probes)
    assert probes["image/dim"] == probes["text/dim"] == SMALL_CONFIG["embed_dim"]
    assert_within_bounds("probe", probes)


def test_evaluate_leaves_the_model_in_training_mode(demo_setup):
    demo_setup.model.train()
    task.evaluate(demo_setup, "val")
    assert demo_setup.model.training and demo_setup.model.caption_encoder.training


def test_build_is_deterministic_and_weights_reload_for_evaluation(demo_dir, demo_setup):
    config = ZhMatchingConfig(**SMALL_CONFIG)
    again = task.build(config, demo_dir, "cpu")
    assert again.extras["vocabulary"] == demo_setup.extras["vocabulary"]
    fresh = task.build(config, demo_dir, "cpu")
    for (name, a), b in zip(fresh.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    again.model.load_state_dict(demo_setup.model.state_dict())  # what `orchestrate evaluate` does
    assert task.evaluate(again, "val") == task.evaluate(demo_setup, "val")


def test_weights_of_another_vocabulary_are_refused_loudly():
    config = ZhMatchingConfig(**SMALL_CONFIG)
    trained = RegionWordMatcher(config, 8, build_vocabulary(["红色的汽车", "白色的狗"]))
    rebuilt = RegionWordMatcher(config, 8, build_vocabulary(["红色的汽车", "白色的猫"]))  # same size
    with pytest.raises(RuntimeError, match="another caption vocabulary"):
        rebuilt.load_state_dict(trained.state_dict())


def test_max_samples_per_split_reads_the_first_images_and_whole_testall_folds(demo_dir):
    config = ZhMatchingConfig(**SMALL_CONFIG, max_samples_per_split=8)
    setup = task.build(config, demo_dir, "cpu")
    assert len(setup.train_batches.dataset) == 8 * 5  # captions of the first 8 training images
    assert task.evaluate(setup, "val")["samples"] == 8
    assert task.evaluate(setup, "test")["samples"] == 8
    testall = task.evaluate(setup, "testall")
    assert testall["samples"] == 5 and testall["fold5/chance/mean_r1"] == 1.0  # 8 cut to 5 folds of 1
    assert images_to_load(ZhMatchingConfig(val_max_images=3, max_samples_per_split=8), "val") == 3
    assert images_to_load(ZhMatchingConfig(val_max_images=None), "test") is None
