"""Fixed-seed derangements for the shuffled-modality probes.

A probe replaces one modality's inputs with another sample's (`<modality>_shuffled/<metric>`):
a derangement guarantees that no sample keeps its own input, so the probe never flatters a
model that ignores the shuffled modality.
"""

from __future__ import annotations

import torch


def derangement(count: int, seed: int) -> torch.Tensor:
    """A permutation of range(count) with no fixed point (for count >= 2), fixed by seed.

    Returns a (count,) long tensor p; sample i takes the input of sample p[i]. It is one random
    cycle: order[j] takes order[j + 1]'s place. count 0 or 1 returns the identity.
    """
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    permutation = torch.empty_like(order)
    permutation[order] = order.roll(-1)
    return permutation
