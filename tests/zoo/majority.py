"""A rare-event detector (90% negatives) whose output is a constant (-> chance_level).

Its evidence score is normalised with LayerNorm over a dimension of size 1, which maps every
score to the same value, so the detector can only learn the prior: accuracy = the majority
rate 0.9, AUROC = 0.5.
"""

from torch import nn

from tests.zoo.base import Detector, DetectorTask


class ConstantDetectorTask(DetectorTask):
    name = "zoo_majority_detector"

    def build_model(self, config):
        return Detector(config, score_norm=nn.LayerNorm(1))  # the bug: BatchNorm1d(1) intended


task = ConstantDetectorTask()
