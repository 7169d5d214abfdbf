"""Image embeddings normalised onto one direction: every image similarity is 1.0
(-> embedding_collapse).

The image projection meant to centre its embeddings on the batch mean (x - mean) but assigns
the mean itself, so every image of a batch gets the same unit vector.
"""

import torch.nn.functional as F

from tests.zoo.base import DualEncoder, MatcherTask


class MeanCollapsedDualEncoder(DualEncoder):
    def encode_images(self, images):
        features = self.image_encoder(images)
        centred = features.mean(dim=0, keepdim=True).expand_as(features)  # the bug: not x - mean
        return F.normalize(centred, dim=-1)


class CollapsedEmbeddingTask(MatcherTask):
    name = "zoo_collapsed_embeddings"

    def build_model(self, config):
        return MeanCollapsedDualEncoder(config)


task = CollapsedEmbeddingTask()
