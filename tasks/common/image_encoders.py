"""Image encoders that map (B, 3, H, W) float images to (B, feature_dim) features.

Each encoder lists its blocks top (nearest the head) first, for progressive unfreezing:
ResNet -> [layer4, layer3, layer2, layer1, stem]; small_cnn -> its conv blocks, last first.
Weights are never downloaded: ResNets start from random init and may load a local torchvision
state_dict file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torchvision
from torch import nn

ImageEncoderName = Literal["small_cnn", "resnet18", "resnet50", "resnet101"]

SMALL_CNN_CHANNELS = (32, 64, 128, 128)
RESNET_BUILDERS = {
    "resnet18": torchvision.models.resnet18,
    "resnet50": torchvision.models.resnet50,
    "resnet101": torchvision.models.resnet101,
}


class ImageEncoder(nn.Module):
    """Base of the encoders here: `feature_dim` and `blocks_top_first()`."""

    feature_dim: int

    def blocks_top_first(self) -> list[nn.Module]:
        raise NotImplementedError


class SmallCNN(ImageEncoder):
    """Conv-BN-ReLU-MaxPool blocks (channels 32-64-128-128) then global average pooling.

    Sized for the CPU demo (32x32 inputs); needs images of at least 16x16.
    """

    def __init__(self, channels: tuple[int, ...] = SMALL_CNN_CHANNELS):
        super().__init__()
        blocks = []
        in_channels = 3
        for out_channels in channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
            )
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = in_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            images = block(images)
        return images.mean(dim=(2, 3))

    def blocks_top_first(self) -> list[nn.Module]:
        return list(reversed(self.blocks))


class ResNetEncoder(ImageEncoder):
    """A torchvision ResNet without its classifier, regrouped into stem + four stages."""

    def __init__(self, resnet: torchvision.models.ResNet):
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2 = resnet.layer1, resnet.layer2
        self.layer3, self.layer4 = resnet.layer3, resnet.layer4
        self.feature_dim = resnet.fc.in_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.stem(images)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            features = stage(features)
        return features.mean(dim=(2, 3))

    def blocks_top_first(self) -> list[nn.Module]:
        return [self.layer4, self.layer3, self.layer2, self.layer1, self.stem]


def load_local_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local state_dict file (torch.load, weights_only); ValueError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"image_weights file {path} does not exist; give a local state_dict file or leave it unset"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and weights-only errors all mean the same here
        raise ValueError(
            f"image_weights file {path} is not a loadable state_dict ({type(error).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"image_weights file {path} holds no state_dict (a dict of tensors)")
    return state


def state_dict_mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """A one-line summary of how `given` fails to fit `expected` ("" when it fits)."""
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    wrong_shape = [
        key
        for key in expected
        if key in given and getattr(given[key], "shape", None) != expected[key].shape
    ]
    problems = [
        f"{len(keys)} {label} (e.g. {keys[0]})"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong_shape),
        )
        if keys
    ]
    return "; ".join(problems)


def build_image_encoder(
    name: ImageEncoderName, weights_path: str | Path | None = None
) -> ImageEncoder:
    """The named encoder, randomly initialised, then loaded from `weights_path` when given.

    weights_path: a torchvision state_dict for a ResNet (its `fc.*` classifier keys are ignored)
    or a state_dict of this module's SmallCNN. A missing file or mismatched keys raise ValueError.
    """
    if name == "small_cnn":
        network: nn.Module = SmallCNN()
    elif name in RESNET_BUILDERS:
        network = RESNET_BUILDERS[name](weights=None)
    else:
        raise ValueError(
            f"unknown image_encoder {name!r}; use small_cnn, {', '.join(RESNET_BUILDERS)}"
        )
    if weights_path is not None:
        state = load_local_state_dict(weights_path)
        expected = network.state_dict()
        if name in RESNET_BUILDERS:  # the classifier is discarded, so whatever it held is ignored
            state = {key: value for key, value in state.items() if not key.startswith("fc.")}
            state.update({key: value for key, value in expected.items() if key.startswith("fc.")})
        mismatch = state_dict_mismatch(expected, state)
        if mismatch:
            raise ValueError(f"image_weights {weights_path} does not fit {name}: {mismatch}")
        network.load_state_dict(state)
    return network if isinstance(network, ImageEncoder) else ResNetEncoder(network)
