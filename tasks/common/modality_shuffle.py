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


def paired_derangement(count: int, seed: int) -> torch.Tensor:
    """A derangement of range(count) made of swaps, fixed by seed: p[p[i]] == i for every i,
    except three samples that rotate when count is odd. count 0 or 1 returns the identity.

    Samples are paired in a random order, so each sample's input still comes from a sample
    drawn at random among the others, as with `derangement`. Being its own inverse is what a
    fused model's probe can use: moving the first modality by p meets the same (first, second)
    input pairs as moving the second modality by p, so both probes share one fused pass.
    """
    permutation = torch.arange(count)
    if count < 2:
        return permutation
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    swapped = count - 3 if count % 2 else count
    first, second = order[0:swapped:2], order[1:swapped:2]
    permutation[first], permutation[second] = second, first
    rotating = order[swapped:]
    permutation[rotating] = rotating.roll(-1)
    return permutation


def closed_groups(permutation: torch.Tensor, size: int) -> list[torch.Tensor]:
    """The samples split into groups of about `size` (whole cycles of the permutation each), so
    that each group's shuffled inputs all come from inside the group: a probe can then encode
    and shuffle one group at a time. Each group is a (k,) long tensor of sample indices."""
    targets = permutation.tolist()
    seen = [False] * len(targets)
    groups: list[torch.Tensor] = []
    current: list[int] = []
    for start in range(len(targets)):
        if seen[start]:
            continue
        index = start
        while not seen[index]:
            seen[index] = True
            current.append(index)
            index = targets[index]
        if len(current) >= size:
            groups.append(torch.tensor(current))
            current = []
    if current:
        groups.append(torch.tensor(current))
    return groups
