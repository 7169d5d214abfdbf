"""Building view pairs from objects: positives are two views of one object, negatives a view of
one object against a view of another, a chosen share of them from the same class.

Everything is drawn from a `random.Random` seeded by (pair_seed, split), so the pairs of a split
depend only on the objects in it and the seed: every trial of a sweep sees the same pairs.
Training uses positives only (the other pairs of a batch are a pair's negatives, see
sampling.py); val and test get one negative per positive, so their labels are balanced.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

from tasks.multiview.objects import ViewedObject

MAX_DRAWS_PER_PAIR = 20  # random draws tried per wanted positive before settling for fewer


@dataclass(frozen=True)
class ViewPair:
    """Two image paths (relative to the dataset root) and whether they show the same object.

    object_a, object_b: the objects shown, None when unknown (a manifest without object
    columns); class_a, class_b: their classes, None when unknown.
    """

    pair_id: str
    view_a: str
    view_b: str
    label: int
    object_a: str | None = None
    object_b: str | None = None
    class_a: str | None = None
    class_b: str | None = None


def split_random(pair_seed: int, split: str) -> random.Random:
    """The generator of one split's pairs (str seeds hash with sha512: stable across runs)."""
    return random.Random(f"multiview-pairs:{pair_seed}:{split}")


def view_index_pairs(view_count: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    """Up to `count` distinct unordered pairs of view indices, each in a random order.

    All C(view_count, 2) pairs when fewer exist; drawn without listing them all, so a 200-frame
    CO3D sequence costs no more than a 12-view render.
    """
    possible = view_count * (view_count - 1) // 2
    if count >= possible:
        chosen = [(i, j) for i in range(view_count) for j in range(i + 1, view_count)]
        rng.shuffle(chosen)
    else:
        seen: set[tuple[int, int]] = set()
        chosen = []
        for _ in range(count * MAX_DRAWS_PER_PAIR):
            i, j = rng.sample(range(view_count), 2)
            if (min(i, j), max(i, j)) in seen:
                continue
            seen.add((min(i, j), max(i, j)))
            chosen.append((i, j))
            if len(chosen) == count:
                break
    return [(i, j) if rng.random() < 0.5 else (j, i) for i, j in chosen]


def positive_pairs(
    objects: list[ViewedObject], pairs_per_object: int, rng: random.Random
) -> list[ViewPair]:
    """`pairs_per_object` pairs of two distinct views per object (fewer when it has fewer)."""
    pairs = []
    for item in objects:
        for number, (i, j) in enumerate(view_index_pairs(len(item.views), pairs_per_object, rng)):
            pairs.append(
                ViewPair(
                    pair_id=f"{item.key}#positive{number}",
                    view_a=item.views[i],
                    view_b=item.views[j],
                    label=1,
                    object_a=item.key,
                    object_b=item.key,
                    class_a=item.class_name,
                    class_b=item.class_name,
                )
            )
    return pairs


def negative_pairs(
    anchors: list[ViewedObject],
    objects: list[ViewedObject],
    same_class_share: float,
    rng: random.Random,
) -> list[ViewPair]:
    """One negative per anchor: a view of it against a view of another object of the split.

    round(same_class_share * len(anchors)) of the partners share the anchor's class (hard
    negatives), chosen among anchors that have a classmate in the split; the others come from
    another class (or from the same class when the split holds a single class).
    """
    by_class: dict[str, list[ViewedObject]] = defaultdict(list)
    for item in objects:
        by_class[item.class_name].append(item)
    with_classmate = [k for k, anchor in enumerate(anchors) if len(by_class[anchor.class_name]) > 1]
    wanted = min(len(with_classmate), round(same_class_share * len(anchors)))
    same_class = set(rng.sample(with_classmate, wanted))
    pairs = []
    for number, anchor in enumerate(anchors):
        classmates = [item for item in by_class[anchor.class_name] if item.key != anchor.key]
        if number in same_class or len(by_class) == 1:
            partner = rng.choice(classmates)
        else:
            partner = rng.choice(objects)
            while partner.class_name == anchor.class_name:
                partner = rng.choice(objects)
        pairs.append(
            ViewPair(
                pair_id=f"{anchor.key}#negative{number}",
                view_a=rng.choice(anchor.views),
                view_b=rng.choice(partner.views),
                label=0,
                object_a=anchor.key,
                object_b=partner.key,
                class_a=anchor.class_name,
                class_b=partner.class_name,
            )
        )
    return pairs


def training_pairs(objects: list[ViewedObject], pairs_per_object: int, pair_seed: int) -> list[ViewPair]:
    """The positive pairs of the training split (its negatives are in-batch, see sampling.py)."""
    return positive_pairs(objects, pairs_per_object, split_random(pair_seed, "train"))


def evaluation_pairs(
    split: str,
    objects: list[ViewedObject],
    pairs_per_object: int,
    same_class_share: float,
    pair_seed: int,
) -> list[ViewPair]:
    """A val or test split's pairs: its positives, then one negative for each positive."""
    rng = split_random(pair_seed, split)
    positives = positive_pairs(objects, pairs_per_object, rng)
    by_key = {item.key: item for item in objects}
    anchors = [by_key[pair.object_a] for pair in positives]
    return positives + negative_pairs(anchors, objects, same_class_share, rng)


def same_class_share(pairs: list[ViewPair]) -> float:
    """The share of a list's negative pairs whose two objects share a class (NaN without any)."""
    negatives = [pair for pair in pairs if pair.label == 0]
    if not negatives:
        return math.nan
    return sum(pair.class_a == pair.class_b for pair in negatives) / len(negatives)


def first_pairs(pairs: list[ViewPair], limit: int | None) -> list[ViewPair]:
    """The split's first `limit` pairs in split order (all when limit is None), taken from the
    positives and the negatives alike (half each, as far as each has them), so a cut val or test
    split still has both labels; the pairs keep their relative order."""
    if limit is None or len(pairs) <= limit:
        return list(pairs)
    positives = [pair for pair in pairs if pair.label == 1]
    negatives = [pair for pair in pairs if pair.label != 1]
    keep_negatives = min(len(negatives), max(limit // 2, limit - len(positives)))
    kept = {id(pair) for pair in positives[: limit - keep_negatives] + negatives[:keep_negatives]}
    return [pair for pair in pairs if id(pair) in kept]
