"""A dual encoder whose attribute tower ends in a dead ReLU before the normalisation
(-> embedding_collapse, naming the attributes).

The tower's last layer was meant to output non-negative features (a ReLU) with a small
positive bias, but the bias was initialised to -100: every unit outputs 0 for every input, a
dead ReLU passes no gradient, and F.normalize leaves the zero vectors at 0. Their cosine with
anything is 0, so the cosine statistic reads them as healthy; the image embeddings are fine.
"""

import torch
from torch import nn

from tests.zoo.base import DualEncoder, MatcherTask


class DeadReluDualEncoder(DualEncoder):
    def __init__(self, config):
        super().__init__(config)
        self.attribute_encoder = nn.Sequential(self.attribute_encoder, nn.ReLU())
        with torch.no_grad():
            self.attribute_encoder[0][-1].bias.fill_(-100.0)  # the bug: meant +0.01


class DeadReluTask(MatcherTask):
    name = "zoo_dead_relu"

    def build_model(self, config):
        return DeadReluDualEncoder(config)


task = DeadReluTask()
