"""CUB-200-2011 as its tarball unpacks, from the real metadata excerpts in tests/fixtures/cub (see
its README): per-image attribute labels drawn from the real class-level attribute percentages,
or those class-level vectors copied onto every image (the label leak), and placeholder images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cub"
DATASET = "CUB_200_2011"


def class_percentages() -> np.ndarray:
    """(classes, 312) percent of annotators who saw each attribute (real file, 3 classes)."""
    return np.loadtxt(FIXTURES / DATASET / "attributes" / "class_attribute_labels_continuous.txt", ndmin=2)


def image_classes(dataset: Path) -> dict[int, int]:
    return dict(tuple(map(int, line.split())) for line in (dataset / "image_class_labels.txt").read_text().splitlines())


def write_attribute_labels(dataset: Path, class_level: bool, seed: int = 0) -> None:
    """attributes/image_attribute_labels.txt for every image of images.txt.

    class_level False: each attribute present with its class's real percentage, certainty 1..4
    at random (not visible -> absent), as per-image MTurk annotations vary. class_level True:
    the class's vector (percentage > 50) on every image of the class, certainty 4.
    """
    generator = np.random.default_rng(seed)
    percentages = class_percentages()
    lines = []
    for image_id, class_id in sorted(image_classes(dataset).items()):
        chance = percentages[class_id - 1] / 100
        if class_level:
            present, certainty = (chance > 0.5).astype(int), np.full(len(chance), 4)
        else:
            certainty = generator.choice([1, 2, 3, 4], size=len(chance), p=[0.1, 0.1, 0.5, 0.3])
            present = ((generator.random(len(chance)) < chance) & (certainty > 1)).astype(int)
        lines += [f"{image_id} {a + 1} {present[a]} {certainty[a]} {7.5 + image_id % 9:.4f}" for a in range(len(chance))]
    (dataset / "attributes" / "image_attribute_labels.txt").write_text("\n".join(lines) + "\n")


def placeholder_images(dataset: Path, seed: int = 0) -> None:
    generator = np.random.default_rng(seed)
    for line in (dataset / "images.txt").read_text().splitlines():
        path = dataset / "images" / line.split()[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(placeholder_picture(generator)).save(path)


def placeholder_picture(generator: np.random.Generator) -> np.ndarray:
    """A 20 x 24 picture of a few flat coloured blocks, different for every image. Pixel noise
    would not do: global pooling averages it to the same embedding for every image, and the
    collapse guard rightly stops such a trial."""
    blocks = generator.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((5, 6, 1), dtype=np.uint8))


def tarball(root: Path, class_level: bool = False, names: bool = True) -> Path:
    """root/CUB_200_2011/ (real metadata excerpt, generated attribute labels, placeholder images)
    and, with names, root/attributes.txt beside it as the tarball has it (names written here)."""
    dataset = root / DATASET
    shutil.copytree(FIXTURES / DATASET, dataset)
    write_attribute_labels(dataset, class_level)
    placeholder_images(dataset)
    if names:
        count = class_percentages().shape[1]
        (root / "attributes.txt").write_text("".join(f"{i} test_attribute::{i}\n" for i in range(1, count + 1)))
    return root
