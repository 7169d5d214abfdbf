"""A dual encoder whose attribute tower sees a zeroed input (-> embedding_collapse, naming the
attributes, not the images that come first in the probes).

The attribute vector is multiplied by a feature mask meant to drop unreliable attributes; the
mask was built from a column that is always 0, so the tower encodes the same zero input for
every sample and returns one constant embedding (its biases), whatever the attributes.
The image tower is fine, but its features are non-negative (a ReLU, then a unit offset), so its
embeddings start nearly collinear and stay so: with a constant partner the loss gives them no
gradient. Both modalities cross a collapse threshold; the attributes are the worse (and the
cause), the images come first in the probes.
"""

import torch
import torch.nn.functional as F

from tests.zoo.base import DualEncoder, MatcherTask


class MaskedAttributeDualEncoder(DualEncoder):
    def encode_images(self, images):
        return F.normalize(F.relu(self.image_encoder(images)) + 1.0, dim=-1)

    def encode_attributes(self, attributes):
        mask = torch.zeros(attributes.shape[-1], device=attributes.device)  # the bug: all 0
        return super().encode_attributes(attributes * mask)


class ConstantTowerTask(MatcherTask):
    name = "zoo_constant_tower"

    def build_model(self, config):
        return MaskedAttributeDualEncoder(config)


task = ConstantTowerTask()
