"""A procedural stand-in for CUB-200-2011: drawn 32x32 birds with noisy attribute annotations.

20 classes = 5 groups x 2 crown colours x 2 builds. A group fixes the body colour, wing colour,
bill shape (all drawn) and eye, leg and belly attributes (annotated, not drawn). The crown
colour (black or white cap) is DRAWN but has no attribute; the build (small perching vs large
duck-like) is ANNOTATED (size, shape, wing shape, bill length) but not drawn, since birds are drawn at random
scale in one silhouette. So images alone can tell at best the group and crown (2 candidate
classes), attributes alone the group and build (2 candidates), and only both together identify
the class. Neither modality is clean: images have colour jitter, pixel noise, random pose and
scale, sometimes a leaf hiding the head; each attribute is "not visible" with probability 0.2,
else annotated with a certainty (guessing / probably / definitely) that sets how often it is
flipped. The files follow the official layout exactly, as CUB_200_2011.tgz unpacks (the dataset in
CUB_200_2011/, the attribute names beside it), including a few attribute lines with an extra
field, as in the real file. The same seed writes the same bytes.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tasks.common.demo_encoders import place_image_encoder
from tasks.cub_attributes.data import (
    ATTRIBUTE_LABELS_FILE,
    CLASSES_FILE,
    IMAGES_DIR,
    IMAGES_FILE,
    LABELS_FILE,
    SPLIT_FILE,
)
from tasks.cub_attributes.layout import DATASET_FOLDER, NAMES_FILE

IMAGE_SIDE = 32
SUPERSAMPLING = 4  # drawn at 128 px and downsampled, so thin parts (bills) survive as blends
IMAGES_PER_CLASS = 30
TRAINING_IMAGES_PER_CLASS = 20  # the rest is the official test split; val is 5 of these 20
NOT_VISIBLE_PROBABILITY = 0.2
# certainty id -> (probability of being annotated with it, probability the annotation is wrong)
CERTAINTY_NOISE = {2: (0.2, 0.35), 3: (0.3, 0.15), 4: (0.5, 0.05)}
LEAF_PROBABILITY = 0.15
PIXEL_NOISE_STD = 20.0

COLOURS = {
    "red": (200, 45, 40),
    "blue": (45, 85, 205),
    "yellow": (230, 200, 40),
    "green": (50, 150, 60),
    "brown": (130, 85, 45),
    "black": (30, 30, 30),
    "white": (245, 245, 245),
    "grey": (140, 140, 140),
    "orange": (240, 130, 30),
}
# Per group: body colour, wing colour, bill shape, then the undrawn group attributes.
GROUPS = [
    {"primary_color": "red", "wing_color": "black", "bill_shape": "cone",
     "eye_color": "black", "leg_color": "pink", "belly_pattern": "solid"},
    {"primary_color": "blue", "wing_color": "white", "bill_shape": "needle",
     "eye_color": "red", "leg_color": "black", "belly_pattern": "spotted"},
    {"primary_color": "yellow", "wing_color": "grey", "bill_shape": "hooked",
     "eye_color": "yellow", "leg_color": "yellow", "belly_pattern": "striped"},
    {"primary_color": "green", "wing_color": "orange", "bill_shape": "cone",
     "eye_color": "red", "leg_color": "pink", "belly_pattern": "solid"},
    {"primary_color": "brown", "wing_color": "white", "bill_shape": "needle",
     "eye_color": "black", "leg_color": "yellow", "belly_pattern": "striped"},
]
CROWNS = ("black", "white")  # drawn, never annotated
BUILDS = (  # annotated, never drawn
    {"size": "small", "shape": "perching-like", "wing_shape": "rounded-wings",
     "bill_length": "shorter_than_head", "word": "Finch"},
    {"size": "large", "shape": "duck-like", "wing_shape": "pointed-wings",
     "bill_length": "about_the_same_as_head", "word": "Teal"},
)
ATTRIBUTE_VALUES = {
    "primary_color": ("red", "blue", "yellow", "green", "brown"),
    "wing_color": ("black", "white", "grey", "orange"),
    "bill_shape": ("cone", "needle", "hooked"),
    "size": ("small", "large"),
    "shape": ("perching-like", "duck-like"),
    "eye_color": ("black", "red", "yellow"),
    "leg_color": ("black", "pink", "yellow"),
    "wing_shape": ("rounded-wings", "pointed-wings"),
    "bill_length": ("shorter_than_head", "about_the_same_as_head"),
    "belly_pattern": ("solid", "spotted", "striped"),
}
ATTRIBUTE_NAMES = [f"has_{kind}::{value}" for kind, values in ATTRIBUTE_VALUES.items() for value in values]
MALFORMED_LINES = 3  # attribute lines given a stray extra field, as in the official file


def demo_classes() -> list[dict]:
    """The 20 classes in class-id order: group, crown and build of each, and its name."""
    classes = []
    for group_index, group in enumerate(GROUPS):
        for crown in CROWNS:
            for build in BUILDS:
                name = f"{group['primary_color'].title()}_{crown.title()}_capped_{build['word']}"
                classes.append({"group": group_index, "crown": crown, "build": build, "name": name})
    return classes


def class_attributes(bird_class: dict) -> set[str]:
    """Names of the attributes a bird of this class truly has."""
    group = GROUPS[bird_class["group"]]
    traits = {kind: group[kind] for kind in group}
    traits.update({kind: value for kind, value in bird_class["build"].items() if kind != "word"})
    return {f"has_{kind}::{value}" for kind, value in traits.items()}


def jitter(colour: tuple[int, int, int], rng: random.Random, amount: int = 25) -> tuple[int, ...]:
    return tuple(min(255, max(0, c + rng.randint(-amount, amount))) for c in colour)


def draw_bill(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, unit: float, fill) -> None:
    """A bill pointing right from (x, y), the front of the head; unit = pixels per 32-px pixel."""
    if shape == "cone":
        points = [(x, y - 1.6 * unit), (x + 3.0 * unit, y), (x, y + 1.6 * unit)]
    elif shape == "needle":
        points = [(x, y - 0.6 * unit), (x + 6.0 * unit, y + 0.2 * unit), (x, y + 0.6 * unit)]
    else:  # hooked: a long upper bill bent down at the tip
        points = [(x, y - 1.2 * unit), (x + 3.5 * unit, y - 0.6 * unit),
                  (x + 4.0 * unit, y + 1.8 * unit), (x + 2.6 * unit, y + 0.3 * unit), (x, y + 1.0 * unit)]
    draw.polygon(points, fill=fill)


def render_bird(bird_class: dict, rng: random.Random, noise: np.random.Generator) -> Image.Image:
    """One 32x32 RGB picture of a bird of this class, with pose, scale, colour and pixel noise."""
    group = GROUPS[bird_class["group"]]
    side = IMAGE_SIDE * SUPERSAMPLING
    background = jitter((170, 200, 215), rng, 35)
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    unit = SUPERSAMPLING * rng.uniform(0.8, 1.15)
    cx = SUPERSAMPLING * (16 + rng.uniform(-3, 3)) - 2 * unit
    cy = SUPERSAMPLING * (17 + rng.uniform(-3, 3))
    body, wing = jitter(COLOURS[group["primary_color"]], rng), jitter(COLOURS[group["wing_color"]], rng)
    # tail, legs, body, wing, head, crown, bill: back to front
    draw.polygon([(cx - 8 * unit, cy - 1 * unit), (cx - 13 * unit, cy - 4 * unit),
                  (cx - 13 * unit, cy + 2 * unit)], fill=wing)
    for leg_x in (cx - 1.5 * unit, cx + 1.5 * unit):
        draw.line([(leg_x, cy + 5 * unit), (leg_x, cy + 9 * unit)], fill=(90, 60, 40), width=int(unit))
    draw.ellipse([cx - 9 * unit, cy - 6 * unit, cx + 9 * unit, cy + 6 * unit], fill=body)
    draw.ellipse([cx - 7 * unit, cy - 4 * unit, cx + 3 * unit, cy + 2.5 * unit], fill=wing)
    hx, hy, radius = cx + 8 * unit, cy - 6 * unit, 4.5 * unit
    draw.ellipse([hx - radius, hy - radius, hx + radius, hy + radius], fill=body)
    draw.pieslice([hx - radius, hy - radius, hx + radius, hy + radius], 180, 360,
                  fill=jitter(COLOURS[bird_class["crown"]], rng, 15))
    bill = jitter((60, 55, 50), rng, 20)
    draw_bill(draw, group["bill_shape"], hx + radius * 0.9, hy + 0.5 * unit, unit, bill)
    if rng.random() < LEAF_PROBABILITY:  # a leaf in front of the head hides the crown
        draw.ellipse([hx - 6 * unit, hy - 6 * unit, hx + 6 * unit, hy + 5 * unit],
                     fill=jitter((60, 120, 50), rng, 20))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    small = image.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.LANCZOS)
    pixel_noise = noise.normal(0, PIXEL_NOISE_STD, (IMAGE_SIDE, IMAGE_SIDE, 3))
    pixels = np.asarray(small, dtype=np.float32) + pixel_noise
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))


def annotate(true_attributes: set[str], rng: random.Random) -> list[tuple[int, int, float]]:
    """(is_present, certainty_id, time in seconds) for every attribute, in attribute-id order."""
    annotations = []
    certainties = list(CERTAINTY_NOISE)
    weights = [CERTAINTY_NOISE[c][0] for c in certainties]
    for name in ATTRIBUTE_NAMES:
        truth = int(name in true_attributes)
        time = round(rng.uniform(1.0, 12.0), 3)
        if rng.random() < NOT_VISIBLE_PROBABILITY:
            annotations.append((0, 1, time))  # CUB marks unseen attributes absent
            continue
        certainty = rng.choices(certainties, weights)[0]
        wrong = rng.random() < CERTAINTY_NOISE[certainty][1]
        annotations.append((truth ^ int(wrong), certainty, time))
    return annotations


def make_demo_data(tarball_root: Path, seed: int = 0, encoders: bool = True) -> None:
    """Write 20 classes x 30 images (20 train, 10 test) as the CUB tarball unpacks under
    tarball_root, and (unless `encoders` is False) the pretrained image encoder under
    tarball_root/pretrained/.

    Files: attributes.txt, and in CUB_200_2011/: images.txt, train_test_split.txt,
    image_class_labels.txt, classes.txt, attributes/image_attribute_labels.txt,
    images/<class>/<file>.png.
    """
    root = Path(tarball_root) / DATASET_FOLDER
    (root / "attributes").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    classes = demo_classes()
    image_lines, split_lines, label_lines, attribute_lines = [], [], [], []
    image_id = 0
    for class_index, bird_class in enumerate(classes):
        class_id = class_index + 1
        folder = f"{class_id:03d}.{bird_class['name']}"
        (root / IMAGES_DIR / folder).mkdir(parents=True, exist_ok=True)
        training = set(rng.sample(range(IMAGES_PER_CLASS), TRAINING_IMAGES_PER_CLASS))
        true_attributes = class_attributes(bird_class)
        for number in range(IMAGES_PER_CLASS):
            image_id += 1
            relative = f"{folder}/{bird_class['name']}_{number + 1:04d}_{image_id}.png"
            render_bird(bird_class, rng, noise).save(root / IMAGES_DIR / relative)
            image_lines.append(f"{image_id} {relative}")
            split_lines.append(f"{image_id} {int(number in training)}")
            label_lines.append(f"{image_id} {class_id}")
            for attribute_id, (present, certainty, time) in enumerate(
                annotate(true_attributes, rng), start=1
            ):
                attribute_lines.append(f"{image_id} {attribute_id} {present} {certainty} {time}")
    for index in rng.sample(range(len(attribute_lines)), MALFORMED_LINES):
        attribute_lines[index] += " 0"
    files = {
        IMAGES_FILE: image_lines,
        SPLIT_FILE: split_lines,
        LABELS_FILE: label_lines,
        CLASSES_FILE: [f"{i + 1} {i + 1:03d}.{c['name']}" for i, c in enumerate(classes)],
        f"../{NAMES_FILE}": [f"{i + 1} {name}" for i, name in enumerate(ATTRIBUTE_NAMES)],
        ATTRIBUTE_LABELS_FILE: attribute_lines,
    }
    for name, lines in files.items():
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if encoders:  # the pretrained image encoder the search space names (demo_encoders.py)
        place_image_encoder(Path(tarball_root))
