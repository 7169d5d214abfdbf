"""A healthy matcher whose metric stops rising early (-> plateau, not a failure).

A linear dual encoder with the correct symmetric InfoNCE: the zoo's pairing is a linear
mixing, so val R@1 reaches its ceiling within a few epochs and more epochs add nothing.
"""

import numpy as np
from torch import nn

from tests.zoo.base import ATTRIBUTE_DIM, IMAGE_SHAPE, DualEncoder, MatcherTask


class LinearDualEncoder(DualEncoder):
    def __init__(self, config):
        super().__init__(config)
        self.image_encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(int(np.prod(IMAGE_SHAPE)), config.embed_dim))
        self.attribute_encoder = nn.Linear(ATTRIBUTE_DIM, config.embed_dim)


class PlateauMatcherTask(MatcherTask):
    name = "zoo_plateau_matcher"

    def build_model(self, config):
        return LinearDualEncoder(config)


task = PlateauMatcherTask()
