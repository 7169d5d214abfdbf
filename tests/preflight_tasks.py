"""Small plug-in tasks for the preflight tests: one that records the config it was built with,
one whose training step raises, one that declares a plausible maximum."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tests.zoo.base import ClassifierTask
from tests.zoo.noise import NoiseEncoderTask

BUILT_WITH: list = []  # the configs the recording task was built with, in this process


class RecordingTask(NoiseEncoderTask):
    name = "preflight_recording"

    def build(self, config, data_dir, device):
        BUILT_WITH.append(config)
        return super().build(config, data_dir, device)


class StrictConfig(BaseModel):
    """A config model of the user's own that is not a TrainingConfig: no subset field."""

    model_config = ConfigDict(extra="forbid")
    learning_rate: float = 0.01
    seed: int = 0
    batch_size: int = 64
    hidden_dim: int = 32
    embed_dim: int = 16
    grad_clip_norm: float = 1.0


class StrictConfigTask(RecordingTask):
    name = "preflight_strict_config"
    config_model = StrictConfig


class BrokenStepTask(ClassifierTask):
    name = "preflight_broken_step"

    def build_model(self, config):
        return NoiseEncoderTask().build_model(config)

    def training_step(self, setup, batch):
        images = batch[0]
        return {"loss": setup.model.head(images.flatten(1)).mean()}  # the bug: 64 inputs, head wants 32


class PlausibleTask(ClassifierTask):
    name = "preflight_plausible"
    plausible_max = {"val/acuracy": 0.9}  # misspelt: the task reports val/accuracy

    def build_model(self, config):
        return NoiseEncoderTask().build_model(config)


recording = RecordingTask()
strict_config = StrictConfigTask()
broken_step = BrokenStepTask()
plausible = PlausibleTask()
