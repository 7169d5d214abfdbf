"""A healthy two-input detector that learns its attributes first and its images later
(-> no failure guard; it completes).

The event is "the image bit or the attribute bit is set" (3 of 4 categories), so each input
alone ranks the samples to an AUROC of about 0.83 and both together to about 1. The image
features arrive on a 20 x smaller scale than the attributes (one sensor normalised in other
units than the other), so their weights take longer to matter: for the first epochs the
images add next to nothing (shuffling them barely moves the AUROC), then they add about as
much as the attributes. A guard that judged the first reports alone would call the images
ignored.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tests.zoo.base import ATTRIBUTE_DIM, IMAGE_SHAPE, ZooTask, auroc, derangement, mlp, seeded_evaluation

IMAGE_SCALE = 0.005


class TwoInputDetector(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.image_encoder = mlp(int(np.prod(IMAGE_SHAPE)), config.hidden_dim, config.embed_dim)
        self.attribute_encoder = mlp(ATTRIBUTE_DIM, config.hidden_dim, config.embed_dim)
        self.head = nn.Linear(2 * config.embed_dim, 1)

    def forward(self, images, attributes):
        features = [self.image_encoder(images * IMAGE_SCALE), self.attribute_encoder(attributes)]
        return self.head(F.relu(torch.cat(features, -1))).squeeze(-1)


class OneModalityFirstTask(ZooTask):
    name = "zoo_one_modality_first"
    metric, mode = "val/auroc", "max"
    value_bounds = {"train/loss": (0.0, float("inf")), "val/auroc": (0.0, 1.0),
                    "val/accuracy": (0.0, 1.0), "val/majority_rate": (0.0, 1.0),
                    "probe/*_shuffled/auroc": (0.0, 1.0)}

    def build_model(self, config):
        return TwoInputDetector(config)

    def training_step(self, setup, batch):
        images, attributes, category = (t.to(setup.device) for t in batch[:3])
        event = (category != 0).float()
        return {"loss": F.binary_cross_entropy_with_logits(setup.model(images, attributes), event)}

    def _scores(self, setup, images, attributes):
        with torch.no_grad(), seeded_evaluation():
            return setup.model(images.to(setup.device), attributes.to(setup.device)).cpu()

    def evaluate(self, setup, split):
        data = self._split(setup, split)
        event = (data.category != 0).long()
        scores = self._scores(setup, data.images, data.attributes)
        positives = event.double().mean().item()
        return {"auroc": auroc(scores, event), "accuracy": ((scores > 0).long() == event).double().mean().item(),
                "majority_rate": max(positives, 1 - positives), "samples": float(len(event))}

    def probe(self, setup):
        data = self._split(setup, "val")
        event, moved = (data.category != 0).long(), derangement(len(data))
        return {
            "image_shuffled/auroc": auroc(self._scores(setup, data.images[moved], data.attributes), event),
            "attributes_shuffled/auroc": auroc(self._scores(setup, data.images, data.attributes[moved]), event),
        }


task = OneModalityFirstTask()
