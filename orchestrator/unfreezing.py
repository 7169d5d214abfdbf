"""Progressive unfreezing of pretrained encoders, as one structured, searchable schedule.

A task hands the loop its encoders' blocks, top (nearest the head) first. The schedule, from
the config's `unfreeze_*` fields, says how many blocks of each encoder train in a given epoch
(epochs counted from 0):
- `unfreeze_stages == 0`: every block trains from the start (no schedule);
- before `unfreeze_start_epoch`: no block trains (only the heads);
- from then on, stage s (s = 0, 1, ...) begins at `start + s * unfreeze_stage_epochs` and frees
  `unfreeze_layers_per_stage` more blocks, up to `unfreeze_stages` stages. Blocks never reached
  stay frozen for the whole trial.
Frozen blocks get no gradient and keep their BatchNorm running statistics (their BatchNorm
layers are put in eval mode after every `model.train()`), so a frozen pretrained encoder is
really frozen. Freed blocks train at `learning_rate * unfreeze_lr_scale` (see `param_groups`).
"""

from __future__ import annotations

from torch import nn

from tasks.base import TrainingConfig


def trainable_block_count(config: TrainingConfig, epoch: int) -> int | None:
    """How many top blocks of each encoder train in `epoch` (0-based); None means all of them."""
    if config.unfreeze_stages == 0:
        return None
    if epoch < config.unfreeze_start_epoch:
        return 0
    stages_begun = (epoch - config.unfreeze_start_epoch) // config.unfreeze_stage_epochs + 1
    return min(stages_begun, config.unfreeze_stages) * config.unfreeze_layers_per_stage


def apply_unfreezing(blocks: dict[str, list[nn.Module]], trainable_count: int | None) -> None:
    """Set requires_grad on every block and freeze BatchNorm statistics in frozen blocks.

    Call after `model.train()`: it puts the BatchNorm layers of frozen blocks back in eval mode.
    """
    for encoder_blocks in blocks.values():
        for index, block in enumerate(encoder_blocks):
            trains = trainable_count is None or index < trainable_count
            block.requires_grad_(trains)
            if not trains:
                for module in block.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.eval()


def param_groups(
    model: nn.Module, blocks: dict[str, list[nn.Module]], config: TrainingConfig
) -> list[dict]:
    """Optimiser parameter groups: heads at the base learning rate, encoder blocks scaled.

    Every parameter of the model lands in exactly one group; frozen parameters simply get no
    gradient, so AdamW skips them (no weight decay on frozen weights either).
    """
    block_params = [p for encoder in blocks.values() for block in encoder for p in block.parameters()]
    in_blocks = {id(p) for p in block_params}
    if len(in_blocks) != len(block_params):
        raise ValueError("unfreezable blocks overlap: a parameter is in two blocks")
    model_params = {id(p) for p in model.parameters()}
    if not in_blocks <= model_params:
        raise ValueError("an unfreezable block is not part of the model")
    head_params = [p for p in model.parameters() if id(p) not in in_blocks]
    groups = [{"params": head_params, "lr": config.learning_rate, "name": "heads"}]
    if block_params:
        groups.append(
            {
                "params": block_params,
                "lr": config.learning_rate * config.unfreeze_lr_scale,
                "name": "encoder_blocks",
            }
        )
    return groups



def training_regimes(
    config: TrainingConfig, blocks: dict[str, list[nn.Module]], max_epochs: int
) -> list[tuple[int, ...]]:
    """Per epoch (0-based) of the trial, how many blocks of each encoder train, as the model
    sees it: a count beyond an encoder's depth frees the whole encoder, the same as all."""
    regimes = []
    for epoch in range(max_epochs):
        count = trainable_block_count(config, epoch)
        regimes.append(tuple(len(encoder) if count is None else min(count, len(encoder))
                             for encoder in blocks.values()))
    return regimes


def regime_span(regimes: list[tuple[int, ...]], epoch: int) -> tuple[int, bool]:
    """The first epoch trained as `epoch` is (the same blocks free, without a change between),
    and whether every later epoch of the trial trains that way too."""
    start = epoch
    while start > 0 and regimes[start - 1] == regimes[epoch]:
        start -= 1
    return start, all(regime == regimes[epoch] for regime in regimes[epoch:])
