"""Supervised pretext pretraining of an image encoder: one linear head per label, summed CE.

What an ImageNet classifier is to a real ResNet, this is to the demos' small CNN: the encoder
learns from labelled images (tasks/common/pretext_shapes.py) that no demo trains or validates
on, and its heads are thrown away; only the encoder's state_dict is kept.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tasks.common.image_encoders import ImageEncoder
from tasks.common.image_loading import normalise_images


def pretrain_image_encoder(
    encoder: ImageEncoder,
    images: torch.Tensor,
    labels: dict[str, torch.Tensor],
    label_counts: dict[str, int],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    progress: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train `encoder` in place on (N, 3, S, S) uint8 `images` with a linear head per label.

    labels: label name -> (N,) long class ids; label_counts: label name -> number of classes.
    A tenth of the pool is held out; after each epoch `progress` gets one line (loss and
    held-out accuracy per label). Training images are mirrored at random. Returns the final
    held-out accuracy per label.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    # channels_last runs this CNN's convolutions about twice as fast on CPU; the state_dict
    # saved afterwards holds the same values in either layout.
    encoder.to(memory_format=torch.channels_last)
    order = torch.randperm(len(images), generator=generator)
    held_out, train = order[: len(images) // 10], order[len(images) // 10 :]
    heads = nn.ModuleDict({name: nn.Linear(encoder.feature_dim, count) for name, count in label_counts.items()})
    parameters = [*encoder.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=1e-4)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps)
    accuracy: dict[str, float] = {}
    for epoch in range(epochs):
        encoder.train()
        heads.train()
        total, batches = 0.0, 0
        for start in range(0, len(train), batch_size):
            rows = train[start : start + batch_size]
            batch = images[rows]
            mirror = torch.rand(len(rows), generator=generator) < 0.5
            batch = torch.where(mirror[:, None, None, None], batch.flip(-1), batch)
            features = encoder(normalise_images(batch).contiguous(memory_format=torch.channels_last))
            loss = sum(F.cross_entropy(heads[name](features), labels[name][rows]) for name in heads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
            batches += 1
        train = train[torch.randperm(len(train), generator=generator)]
        accuracy = held_out_accuracy(encoder, heads, images[held_out], {k: v[held_out] for k, v in labels.items()})
        scores = ", ".join(f"{name} accuracy {value:.2f}" for name, value in accuracy.items())
        progress(f"epoch {epoch + 1}/{epochs}: loss {total / batches:.3f}, held out: {scores}")
    encoder.eval()
    return accuracy


@torch.no_grad()
def held_out_accuracy(
    encoder: ImageEncoder, heads: nn.ModuleDict, images: torch.Tensor, labels: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Accuracy of each head on held-out images, encoder and heads in eval mode."""
    encoder.eval()
    heads.eval()
    features = torch.cat([encoder(normalise_images(images[i : i + 512])) for i in range(0, len(images), 512)])
    return {name: float((heads[name](features).argmax(-1) == labels[name]).float().mean()) for name in heads}
