"""What a trial has done so far: its epochs' results, its best epoch and that epoch's weights.

Every checkpoint carries it beside the latest weights, so any checkpoint alone tells the whole
surviving history of its trial (what MLflow mirrors, orchestrator/tracking/) and holds the
weights of its best epoch (what `orchestrate best` exports), whatever attempts came before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from orchestrator.outcomes import BEST_EPOCH, best_metric_key, is_better

EPOCH_SECONDS = "time/epoch_seconds"  # one epoch: train, evaluate, probe
TRAIN_SECONDS = "time/train_seconds"  # the epochs of the history so far, summed


@dataclass
class TrialProgress:
    """A trial's reported epochs (1-based: history[0] is epoch 1) and its best so far."""

    metric: str
    mode: str
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    # A CPU copy of the best epoch's weights: the model trains on past them.
    best_weights: dict[str, torch.Tensor] | None = None

    @property
    def best_value(self) -> float | None:
        return None if self.best_epoch is None else float(self.history[self.best_epoch - 1][self.metric])

    def add_epoch(self, result: dict[str, Any], model: torch.nn.Module) -> None:
        """Append an epoch's result (which has EPOCH_SECONDS) and update the best epoch.

        The result gains TRAIN_SECONDS, `best/<metric>` and `best/epoch`: the trial's totals
        over its whole history, which a resumed attempt alone could not know.
        """
        before = self.history[-1][TRAIN_SECONDS] if self.history else 0.0
        result[TRAIN_SECONDS] = before + float(result[EPOCH_SECONDS])
        self.history.append(result)
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and is_better(float(value), self.best_value, self.mode):
            self.best_epoch = len(self.history)
            self.best_weights = {key: tensor.detach().to("cpu", copy=True)
                                 for key, tensor in model.state_dict().items()}
        if self.best_epoch is not None:
            result[best_metric_key(self.metric)] = self.best_value
            result[BEST_EPOCH] = self.best_epoch

    def best_is_latest(self) -> bool:
        return self.best_epoch is not None and self.best_epoch == len(self.history)
