"""A small plug-in task whose search space holds a real bug: the browser test's sweep.

The zoo's healthy linear matcher (tests/zoo/plateau.py) with its contrastive loss as a searched
choice: `infonce` (correct) or `positive_only`, the zoo's wrong InfoNCE without negatives
(tests/zoo/wrong_infonce.py), whose loss goes below 0 at once and is stopped by the
impossible_value guard. A sweep over both gives healthy trials and guard-stopped ones, in
seconds per trial.
"""

from typing import Literal

from pydantic import Field

from tests.zoo.base import ZooConfig
from tests.zoo.plateau import PlateauMatcherTask
from tests.zoo.wrong_infonce import WrongInfoNCETask


class LossChoiceConfig(ZooConfig):
    matching_loss: Literal["infonce", "positive_only"] = Field(
        "infonce", description="the contrastive loss; positive_only is the bug")


class LossChoiceMatcher(PlateauMatcherTask):
    name = "ui_matcher"
    config_model = LossChoiceConfig

    def matching_loss(self, image_embeddings, attribute_embeddings, config):
        if config.matching_loss == "positive_only":
            return WrongInfoNCETask.matching_loss(self, image_embeddings, attribute_embeddings, config)
        return super().matching_loss(image_embeddings, attribute_embeddings, config)


task = LossChoiceMatcher()

SPACE = {
    "task": task.name, "metric": task.metric, "mode": task.mode,
    "budget": {"max_epochs": 3, "grace_period": 3, "reduction_factor": 2},
    "parameters": {
        "matching_loss": {"type": "categorical", "choices": ["infonce", "positive_only"]},
        "learning_rate": {"type": "float", "low": 5.0e-3, "high": 3.0e-2, "log": True},
        "temperature": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
    },
}
