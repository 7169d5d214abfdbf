"""A healthy matcher that reaches its ceiling early and then wanders there, on a small val set
(-> plateau: converged, not a failure).

The attribute sensor is noisy (seeded noise twice the signal's size), so no model matches more
than about a third of the 128 val images; the network keeps moving after it gets there, so
R@1, which moves in steps of 1/256, wanders by a few hundredths from epoch to epoch and sets
new maxima by noise alone. A plateau guard that counts any gain above a fixed 0.005 as
progress lets such a trial run its whole budget.
"""

import dataclasses

import torch

from tests.zoo.base import MatcherTask

SENSOR_NOISE, SENSOR_SEED = 1.0, 11


class NoisySensorMatcherTask(MatcherTask):
    name = "zoo_small_val_plateau"

    def prepare_split(self, split, name):
        generator = torch.Generator().manual_seed(SENSOR_SEED + (name == "val"))
        noise = SENSOR_NOISE * torch.randn(split.attributes.shape, generator=generator)
        return dataclasses.replace(split, attributes=split.attributes + noise)


task = NoisySensorMatcherTask()
