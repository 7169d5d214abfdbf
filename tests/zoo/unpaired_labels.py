"""A detector whose labels were joined to the wrong samples (-> chance_level, "no signal").

The event labels are balanced (the image's sign bit), but the label column was joined on a
row order that differs from the images': every sample carries another sample's label. The
images predict nothing about these labels, so the val AUROC wanders on both sides of 0.5 while
the training loss still falls (the network memorises its training labels).
"""

import dataclasses

import torch

from tests.zoo.base import DetectorTask

JOIN_SEED = 3


class UnpairedLabelDetectorTask(DetectorTask):
    name = "zoo_unpaired_labels"

    def prepare_split(self, split, name):
        event = (split.category >= 2).long()  # the image code's sign: learnable from the image
        wrong_rows = torch.randperm(len(event), generator=torch.Generator().manual_seed(JOIN_SEED))
        return dataclasses.replace(split, rare_event=event[wrong_rows])  # the bug: another row's


task = UnpairedLabelDetectorTask()
