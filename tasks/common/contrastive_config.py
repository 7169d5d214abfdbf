"""The loss hyperparameters every contrastive task exposes, declared once."""

from __future__ import annotations

from pydantic import Field

from tasks.base import TrainingConfig


class ContrastiveConfig(TrainingConfig):
    """TrainingConfig plus InfoNCE's temperature and the hard-negative hinge term
    (tasks/common/contrastive.py). A task overrides a default by redeclaring the field."""

    temperature: float = Field(0.07, gt=0, description="softmax temperature of InfoNCE")
    hard_negative_ratio: float = Field(
        0.0,
        ge=0,
        le=1,
        description="fraction of in-batch negatives (hardest first) in the hinge term",
    )
    hard_negative_weight: float = Field(
        0.0, ge=0, description="weight of the hard-negative hinge in the loss"
    )
    hard_negative_margin: float = Field(
        0.2, ge=0, description="cosine margin of the hard-negative hinge"
    )
