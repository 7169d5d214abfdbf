"""Label leaks in CUB-style attribute annotations.

CUB's image_attribute_labels.txt holds each image's own MTurk annotations, which vary between
images of one species. Class-level attribute vectors copied onto every image (e.g. from
class_attribute_labels_continuous.txt) make the attributes a restatement of the label: a
classifier reads the class off the attributes alone and "reaches 100%". That is refused as a
label leak when every class with at least two images has one attribute vector shared by all
its images.
"""

from __future__ import annotations

import numpy as np


def classes_with_one_attribute_vector(is_present: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """(classes whose images all share one is_present vector, classes with >= 2 images).

    is_present: (N, A) 0/1; labels: (N,) class indices.
    """
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    first_row_of_class = np.repeat(order[starts], sizes)
    same_as_first = np.all(is_present[order] == is_present[first_row_of_class], axis=1)
    constant = np.logical_and.reduceat(same_as_first, starts) if len(starts) else np.zeros(0, bool)
    multi_image = sizes >= 2
    return int(np.sum(constant & multi_image)), int(np.sum(multi_image))


def class_level_attribute_leak(is_present: np.ndarray, labels: np.ndarray, source: str) -> str | None:
    """One line describing the leak when every multi-image class has a constant attribute vector,
    else None. source: the attribute file, named in the line."""
    constant, classes = classes_with_one_attribute_vector(is_present, labels)
    if classes == 0 or constant < classes:
        return None
    return (
        f"{source}: in each of the {classes} classes every image has the same attribute vector "
        "(class-level attributes written per image), so the attributes alone name the class: a label "
        "leak; use per-image annotations, or pass --allow-data-leak to sweep anyway"
    )
