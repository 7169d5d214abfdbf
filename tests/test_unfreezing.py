"""The unfreezing schedule: which parameters train in which epoch, BatchNorm statistics frozen;
then the same on the demos' pretrained encoders in a real task, through the real optimiser."""

from pathlib import Path

import pytest
import torch
from torch import nn

from orchestrator.training import MixedPrecision, build_optimizer, train_one_epoch
from orchestrator.health import HealthConfig
from orchestrator.trainable import TrialPlan, train_trial
from orchestrator.unfreezing import (
    apply_unfreezing, param_groups, regime_span, trainable_block_count, training_regimes)
from tasks.anomaly.config import AnomalyConfig
from tasks.anomaly.model import build_detector
from tasks.base import TrainingConfig
from tasks.common.demo_encoders import IMAGE_ENCODER_FILE, TEXT_ENCODER_DIR
from tasks.cub_attributes.config import CubAttributesConfig
from tasks.cub_attributes.model import build_classifier
from tasks.multiview.config import MultiviewConfig
from tasks.multiview.model import build_view_encoder
from tasks.retrieval import RetrievalConfig, demo, task
from tasks.retrieval.model import build_dual_encoder


class TwoEncoders(nn.Module):
    def __init__(self):
        super().__init__()
        self.image = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)) for _ in range(3)])
        self.text = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
        self.head = nn.Linear(4, 2)

    def blocks(self):
        # top (nearest the head) first, as tasks hand them over
        return {"image": list(self.image)[::-1], "text": list(self.text)[::-1]}


def trainable_names(model: nn.Module) -> set[str]:
    return {name.rsplit(".", 1)[0] for name, p in model.named_parameters() if p.requires_grad}


def schedule(**fields) -> TrainingConfig:
    return TrainingConfig(**fields)


def test_block_counts_follow_start_stages_and_layers_per_stage():
    config = schedule(unfreeze_start_epoch=2, unfreeze_stages=2, unfreeze_layers_per_stage=1,
                      unfreeze_stage_epochs=2)
    assert [trainable_block_count(config, epoch) for epoch in range(8)] == [0, 0, 1, 1, 2, 2, 2, 2]
    no_schedule = schedule(unfreeze_stages=0)
    assert trainable_block_count(no_schedule, 0) is None


def test_training_regimes_count_what_the_model_sees_per_encoder():
    blocks = TwoEncoders().blocks()  # image 3 blocks, text 2
    staged = schedule(unfreeze_start_epoch=1, unfreeze_stages=3, unfreeze_layers_per_stage=1)
    regimes = training_regimes(staged, blocks, 6)
    # text is whole from epoch 2 (a count past its depth is all of it); image from epoch 3
    assert regimes == [(0, 0), (1, 1), (2, 2), (3, 2), (3, 2), (3, 2)]
    assert [regime_span(regimes, epoch) for epoch in range(6)] == [
        (0, False), (1, False), (2, False), (3, True), (3, True), (3, True)]
    everything = training_regimes(schedule(unfreeze_stages=0), blocks, 3)
    assert everything == [(3, 2)] * 3 and regime_span(everything, 2) == (0, True)
    no_blocks = training_regimes(staged, {}, 3)  # a task without unfreezable blocks: one regime
    assert regime_span(no_blocks, 2) == (0, True)


def test_frozen_and_trainable_parameter_sets_per_epoch():
    model = TwoEncoders()
    config = schedule(unfreeze_start_epoch=1, unfreeze_stages=2, unfreeze_layers_per_stage=1)
    expected = {
        0: {"head"},
        1: {"head", "image.2.0", "image.2.1", "text.1"},
        2: {"head", "image.2.0", "image.2.1", "image.1.0", "image.1.1", "text.1", "text.0"},
        3: {"head", "image.2.0", "image.2.1", "image.1.0", "image.1.1", "text.1", "text.0"},
    }
    for epoch, names in expected.items():
        model.train()
        apply_unfreezing(model.blocks(), trainable_block_count(config, epoch))
        assert trainable_names(model) == names, epoch


def test_batchnorm_statistics_do_not_move_in_frozen_blocks():
    model = TwoEncoders()
    model.train()
    apply_unfreezing(model.blocks(), 1)  # image.2 trains, image.0 and image.1 are frozen
    frozen_bn, free_bn = model.image[0][1], model.image[2][1]
    assert not frozen_bn.training and free_bn.training
    before_frozen = frozen_bn.running_mean.clone()
    before_free = free_bn.running_mean.clone()
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    for block in model.image:
        images = block(images)
    assert torch.equal(frozen_bn.running_mean, before_frozen)
    assert not torch.equal(free_bn.running_mean, before_free)


def test_param_groups_scale_encoder_learning_rate_and_cover_every_parameter():
    model = TwoEncoders()
    config = schedule(learning_rate=1e-3, unfreeze_lr_scale=0.1)
    groups = param_groups(model, model.blocks(), config)
    assert [g["name"] for g in groups] == ["heads", "encoder_blocks"]
    assert groups[0]["lr"] == 1e-3 and abs(groups[1]["lr"] - 1e-4) < 1e-12
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())


def test_frozen_parameters_do_not_change_under_a_real_optimiser_step():
    model = TwoEncoders()
    config = schedule(unfreeze_stages=1, unfreeze_start_epoch=5)
    optimizer = torch.optim.AdamW(param_groups(model, model.blocks(), config), weight_decay=0.1)
    model.train()
    apply_unfreezing(model.blocks(), trainable_block_count(config, 0))
    frozen_before = model.text[0].weight.detach().clone()
    head_before = model.head.weight.detach().clone()
    features = torch.linspace(-1, 1, 8).reshape(2, 4)
    for layer in model.text:
        features = layer(features)
    model.head(features).sum().backward()
    optimizer.step()
    assert torch.equal(model.text[0].weight, frozen_before)
    assert not torch.equal(model.head.weight, head_before)


# --- the demos' pretrained encoders in a real task, through the real optimiser and epoch --------

PRETRAINED = dict(image_weights=IMAGE_ENCODER_FILE, text_encoder=TEXT_ENCODER_DIR)  # relative


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory) -> Path:
    """48 of the retrieval demo's images and captions, with the demos' pretrained encoders."""
    root = tmp_path_factory.mktemp("shapes")
    demo.make_demo_data(root, seed=0, images=48)
    return root


def snapshot(modules) -> dict[str, torch.Tensor]:
    """Every parameter and buffer (BatchNorm running statistics included) of the modules."""
    return {f"{index}.{name}": tensor.detach().clone()
            for index, module in enumerate(modules)
            for name, tensor in [*module.named_parameters(), *module.named_buffers()]}


def unchanged(before: dict, modules) -> bool:
    return all(torch.equal(before[key], value) for key, value in snapshot(modules).items())


def changed(before: dict, modules) -> bool:
    """Every floating-point parameter and running statistic moved (counters aside)."""
    after = snapshot(modules)
    return all(not torch.equal(before[key], value)
               for key, value in after.items() if value.is_floating_point())


def one_epoch(setup, config, epoch: int, max_epochs: int = 4) -> None:
    optimizer, schedule = build_optimizer(setup, config, max_epochs, len(setup.train_batches))
    setup.model.train()
    apply_unfreezing(setup.unfreezable_blocks, trainable_block_count(config, epoch))
    train_one_epoch(task, setup, optimizer, schedule, MixedPrecision(setup.device), config.grad_clip_norm)


def test_over_a_real_epoch_frozen_blocks_keep_weights_and_batchnorm_statistics(shapes_dir):
    config = RetrievalConfig(**PRETRAINED, batch_size=12, unfreeze_stages=2, unfreeze_start_epoch=0,
                             unfreeze_layers_per_stage=1, unfreeze_lr_scale=0.5, learning_rate=2e-3)
    torch.manual_seed(0)
    setup = task.build(config, shapes_dir, torch.device("cpu"))
    image, text = setup.unfreezable_blocks["image"], setup.unfreezable_blocks["text"]
    assert len(image) == 4 and len(text) == 5  # small CNN blocks; BERT layers + embeddings
    heads = [setup.model.image_head, setup.model.text_head]
    before = {name: snapshot(modules) for name, modules in
              (("free", [image[0], text[0]]), ("frozen", image[1:] + text[1:]), ("heads", heads))}
    one_epoch(setup, config, epoch=0)  # stage 1: the top block of each encoder is free
    assert unchanged(before["frozen"], image[1:] + text[1:])
    assert changed(before["free"], [image[0], text[0]]) and changed(before["heads"], heads)
    assert not any(module.training for block in image[1:] for module in block.modules()
                   if isinstance(module, nn.BatchNorm2d))


def test_before_the_start_epoch_only_the_heads_train(shapes_dir):
    config = RetrievalConfig(**PRETRAINED, batch_size=12, unfreeze_stages=1, unfreeze_start_epoch=3)
    torch.manual_seed(0)
    setup = task.build(config, shapes_dir, torch.device("cpu"))
    encoders = [setup.model.image_encoder, setup.model.text_encoder]
    heads = [setup.model.image_head, setup.model.text_head]
    encoders_before, heads_before = snapshot(encoders), snapshot(heads)
    one_epoch(setup, config, epoch=0)
    assert unchanged(encoders_before, encoders) and changed(heads_before, heads)


def test_freed_blocks_step_at_learning_rate_times_unfreeze_lr_scale(shapes_dir):
    # AdamW's first step moves each weight by lr * g / (|g| + eps): about the group's learning
    # rate wherever the gradient is not tiny, so the largest step in each group is its rate.
    config = RetrievalConfig(**PRETRAINED, batch_size=12, unfreeze_stages=1, unfreeze_layers_per_stage=4,
                             unfreeze_lr_scale=0.25, learning_rate=1e-3, weight_decay=0.0, warmup_epochs=0)
    torch.manual_seed(0)
    setup = task.build(config, shapes_dir, torch.device("cpu"))
    optimizer, _ = build_optimizer(setup, config, 4, len(setup.train_batches))
    assert {group["name"]: group["lr"] for group in optimizer.param_groups} == pytest.approx(
        {"heads": 1e-3, "encoder_blocks": 2.5e-4})
    setup.model.train()
    apply_unfreezing(setup.unfreezable_blocks, trainable_block_count(config, 0))
    blocks = [p for block in setup.unfreezable_blocks["image"] for p in block.parameters()]
    heads = [*setup.model.image_head.parameters()]
    before = [p.detach().clone() for p in blocks + heads]
    optimizer.zero_grad()
    task.training_step(setup, next(iter(setup.train_batches)))["loss"].backward()
    optimizer.step()
    steps = [(p.detach() - old).abs().max().item() for p, old in zip(blocks + heads, before)]
    block_step, head_step = max(steps[: len(blocks)]), max(steps[len(blocks):])
    assert block_step == pytest.approx(2.5e-4, rel=0.02) and head_step == pytest.approx(1e-3, rel=0.02)


def test_every_image_task_hands_over_the_small_cnn_loaded_from_weights_top_first(shapes_dir):
    weights = str(shapes_dir / IMAGE_ENCODER_FILE)
    retrieval_model, _ = build_dual_encoder(
        RetrievalConfig(image_weights=weights), ["a red circle", "a blue square"])
    handed_over = {
        "retrieval": retrieval_model.unfreezable_blocks(True, False)["image"],
        "multiview": build_view_encoder(MultiviewConfig(backbone_weights=weights))
        .unfreezable_blocks(True)["backbone"],
        "cub_attributes": build_classifier(CubAttributesConfig(image_weights=weights), 10, 4)
        .unfreezable_blocks(True)["image"],
        "anomaly": build_detector(AnomalyConfig(image_weights=weights)).unfreezable_blocks(True)["image"],
    }
    pretrained = torch.load(weights, weights_only=True)["blocks.3.0.weight"]
    for name, blocks in handed_over.items():
        assert len(blocks) == 4, name
        assert torch.equal(blocks[0][0].weight, pretrained), name  # the last conv block comes first
        assert blocks[0][0].out_channels == 128 and blocks[-1][0].in_channels == 3, name


def test_the_trial_loop_judges_learning_only_once_its_schedule_has_freed_every_block(shapes_dir):
    # A plateau guard that stops at the first chance (patience 1, an unreachable min_delta):
    # a trial training every block from epoch 0 is stopped at report 2; one whose encoders are
    # freed at epoch 2 (0-based) is not judged while they are frozen, and in its last regime
    # has too few reports for a verdict, so it trains its whole budget.
    health = HealthConfig.model_validate(
        {name: {"enabled": name == "plateau"} for name in HealthConfig.model_fields}
        | {"plateau": {"patience": 1, "min_delta": 1.0}})
    plan = TrialPlan("tasks.retrieval:task", str(shapes_dir), 3, "val/mean_r1", "max", health)
    base = {**PRETRAINED, "batch_size": 12, "learning_rate": 1e-3}

    def reports(**schedule_fields) -> list[dict]:
        results: list[dict] = []
        train_trial({**base, **schedule_fields}, plan, None,
                    lambda result, directory: results.append(result))
        return results

    every_block = reports(unfreeze_stages=0)
    assert len(every_block) == 2 and every_block[-1]["health/guard"] == "plateau"
    staged = reports(unfreeze_stages=1, unfreeze_start_epoch=2, unfreeze_layers_per_stage=4)
    assert len(staged) == 3 and not any("health/guard" in result for result in staged)
