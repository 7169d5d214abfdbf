"""A classifier fed a class-level attribute vector in place of the image's own (-> leakage).

CUB-200 ships two attribute tables: per image (noisy human annotations) and per class (their
averages). Reading the per-class table, joined on the image's class, hands the model a vector
that is the same for every image of a class: the label itself. Validation accuracy reaches 1.0
from the attributes alone; the images no longer matter.
"""

import dataclasses

import torch

from tests.zoo.base import ATTRIBUTE_DIM, ClassifierTask

CLASS_ATTRIBUTE_SEED = 7


class ClassLevelAttributeTask(ClassifierTask):
    name = "zoo_class_leak"

    def prepare_split(self, split, name):
        # the bug: one attribute vector per class (the class table), not per image
        class_table = torch.randn(4, ATTRIBUTE_DIM, generator=torch.Generator().manual_seed(
            CLASS_ATTRIBUTE_SEED))
        return dataclasses.replace(split, attributes=class_table[split.category])

    def evaluate(self, setup, split):
        return {**super().evaluate(setup, split), "samples": float(len(self._split(setup, split)))}


task = ClassLevelAttributeTask()
