"""The unfreezing schedule: which parameters train in which epoch, BatchNorm statistics frozen."""

import torch
from torch import nn

from orchestrator.unfreezing import apply_unfreezing, param_groups, trainable_block_count
from tasks.base import TrainingConfig


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
