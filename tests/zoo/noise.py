"""An image encoder whose output is random noise independent of the image (-> modality_ignored).

The category needs both inputs (2 x image bit + attribute bit), so the classifier still learns
the attribute half (accuracy ~0.5, chance ~0.25) while its image branch carries nothing: the
accuracy with the images shuffled across the val batch equals the accuracy with real images.
"""

import torch

from tests.zoo.base import ClassifierTask, TwoModalityClassifier


class NoiseImageClassifier(TwoModalityClassifier):
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        features = self.image_encoder(images)
        return torch.randn_like(features)  # the bug: a sample of noise in place of the features


class NoiseEncoderTask(ClassifierTask):
    name = "zoo_noise_encoder"

    def build_model(self, config):
        return NoiseImageClassifier(config, classes=4)


task = NoiseEncoderTask()
