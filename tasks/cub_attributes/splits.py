"""CUB's splits: the official train/test split, and val carved out of the training images.

CUB-200-2011 publishes only train (5994 images) and test (5794) in train_test_split.txt; a
sweep needs validation data that the test set never feeds, so "val" is a per-class share of
the official training images, fixed by a seed.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def validation_split(
    training_rows: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split the official training rows into (train rows, val rows), stratified by class.

    Per class (rows in ascending order, shuffled by a generator seeded with `seed`),
    round(val_fraction x n) rows go to val, at least 1 and at most n - 1 when n >= 2 (a class
    with one training image keeps it for training). Both outputs are sorted; the result depends
    only on the rows, their labels, the fraction and the seed.
    """
    generator = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(labels[training_rows]):
        rows = np.sort(training_rows[labels[training_rows] == label])
        count = 0 if len(rows) < 2 else min(len(rows) - 1, max(1, round(val_fraction * len(rows))))
        val_parts.append(generator.permutation(rows)[:count])
    val_rows = np.sort(np.concatenate(val_parts)) if val_parts else np.empty(0, dtype=np.int64)
    train_rows = np.setdiff1d(training_rows, val_rows)
    return train_rows, val_rows


def split_rows(is_training: np.ndarray, labels: np.ndarray, split: str, val_fraction: float, seed: int) -> np.ndarray:
    """Rows (indices into the annotations) of "train", "val" (carved from train) or "test".

    is_training: (N,) bool from train_test_split.txt; labels: (N,) class indices.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if split == "test":
        return np.flatnonzero(~is_training)
    train_rows, val_rows = validation_split(np.flatnonzero(is_training), labels, val_fraction, seed)
    return train_rows if split == "train" else val_rows
