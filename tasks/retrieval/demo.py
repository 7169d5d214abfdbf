"""A procedural stand-in for Flickr8k: coloured shapes with truthful captions, written as the
Kaggle download is laid out (Images/ + captions.txt, no split files), so the demo runs the real
reader, split generation included (800 images -> 600/100/100, see split_sources.py).

Each 48x48 image shows one shape (5 kinds) in one colour (6), at one size (2) and one position
(5), on a plain light background with mild pixel noise and small jitter in place, size and hue.
Each image gets 5 different captions, each from a different template with its own synonyms
("a large red circle on the left", "left side: big red disc", ...), all describing it correctly.
Captions are the only supervision, so a model must read shape, colour, size and position from
the pixels to match them; 300 attribute combinations keep most images distinguishable.

Beside the data, `pretrained/` holds the demo's pretrained encoders (tasks/common/demo_encoders.py):
the small CNN pretrained on drawn scenes that are not these images, and a small BERT pretrained
with masked-language modelling on `pretraining_captions()`, captions from the same grammar
but from a random stream of their own, describing none of these images.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tasks.common.demo_encoders import place_image_encoder, place_text_encoder
from tasks.retrieval.caption_files import KAGGLE_CAPTIONS_FILE

IMAGES_DIR = "Images"
IMAGE_SIDE = 48
NUM_IMAGES = 800
CAPTIONS_PER_IMAGE = 5
PRETRAINING_DESCRIPTIONS = 4000  # lines of the text encoder's pretraining corpus

COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 165, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 35),
    "purple": (135, 55, 175),
    "orange": (245, 135, 25),
}
COLOUR_WORDS = {name: [name] for name in COLOURS} | {"purple": ["purple", "violet"]}
SHAPE_WORDS = {
    "circle": ["circle", "round shape", "disc"],
    "square": ["square", "box", "block"],
    "triangle": ["triangle", "three-sided shape", "wedge"],
    "diamond": ["diamond", "rhombus", "tilted square"],
    "cross": ["cross", "plus sign", "plus shape"],
}
SIZE_RADIUS = {"small": 6, "large": 12}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big", "huge"]}
POSITION_CENTRES = {
    "left": (13, 24),
    "right": (35, 24),
    "top": (24, 13),
    "bottom": (24, 35),
    "centre": (24, 24),
}
POSITION_PHRASES = {
    "left": ["on the left", "on the left side", "towards the left edge"],
    "right": ["on the right", "on the right side", "towards the right edge"],
    "top": ["at the top", "near the top edge", "in the upper part"],
    "bottom": ["at the bottom", "near the bottom edge", "in the lower part"],
    "centre": ["in the centre", "in the middle", "at the center"],
}
POSITION_LABELS = {
    "left": ["left side", "left"],
    "right": ["right side", "right"],
    "top": ["top", "upper area"],
    "bottom": ["bottom", "lower area"],
    "centre": ["centre", "middle"],
}
CAPTION_TEMPLATES = [
    "{a_size} {colour} {shape} {where}",
    "{label}: {size} {colour} {shape}",
    "there is {a_colour} {shape} {where}, it is {size}",
    "{where} sits {a_size} {colour} {shape}",
    "picture of {a_colour} {shape}, {size}, {where}",
    "{a_colour} {size} {shape} placed {where}",
    "{size} {shape} in {colour} {where}",
    "the image shows one {size} {colour} {shape} {where}",
]


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    centre: tuple[float, float],
    radius: float,
    fill: tuple[int, ...],
) -> None:
    x, y = centre
    if shape == "circle":
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)
    elif shape == "square":
        side = radius * 0.85
        draw.rectangle([x - side, y - side, x + side, y + side], fill=fill)
    elif shape == "triangle":
        draw.polygon(
            [(x, y - radius), (x - radius, y + radius * 0.8), (x + radius, y + radius * 0.8)],
            fill=fill,
        )
    elif shape == "diamond":
        draw.polygon(
            [(x, y - radius), (x + radius, y), (x, y + radius), (x - radius, y)], fill=fill
        )
    elif shape == "cross":
        arm = max(1.5, radius * 0.35)
        draw.rectangle([x - radius, y - arm, x + radius, y + arm], fill=fill)
        draw.rectangle([x - arm, y - radius, x + arm, y + radius], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def render_image(
    shape: str,
    colour: str,
    size: str,
    position: str,
    rng: random.Random,
    noise: np.random.Generator,
) -> Image.Image:
    """One RGB image of the described shape, with jitter and background noise."""
    background = tuple(rng.randint(200, 240) for _ in range(3))
    image = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), background)
    centre_x, centre_y = POSITION_CENTRES[position]
    centre = (centre_x + rng.uniform(-2, 2), centre_y + rng.uniform(-2, 2))
    radius = SIZE_RADIUS[size] * rng.uniform(0.9, 1.1)
    fill = tuple(min(255, max(0, channel + rng.randint(-15, 15))) for channel in COLOURS[colour])
    draw_shape(ImageDraw.Draw(image), shape, centre, radius, fill)
    pixels = np.asarray(image, dtype=np.int16) + noise.integers(
        -12, 13, size=(IMAGE_SIDE, IMAGE_SIDE, 3)
    )
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def describe(shape: str, colour: str, size: str, position: str, rng: random.Random) -> list[str]:
    """Five different true captions, each from its own template with its own synonyms."""
    captions = []
    for template in rng.sample(CAPTION_TEMPLATES, CAPTIONS_PER_IMAGE):
        size_word = rng.choice(SIZE_WORDS[size])
        colour_word = rng.choice(COLOUR_WORDS[colour])
        captions.append(
            template.format(
                size=size_word,
                a_size=with_article(size_word),
                colour=colour_word,
                a_colour=with_article(colour_word),
                shape=rng.choice(SHAPE_WORDS[shape]),
                where=rng.choice(POSITION_PHRASES[position]),
                label=rng.choice(POSITION_LABELS[position]),
            )
        )
    return captions


def pretraining_captions(descriptions: int = PRETRAINING_DESCRIPTIONS) -> list[str]:
    """The text encoder's pretraining corpus: one line per randomly drawn (shape, colour, size,
    position), two of its captions joined ("... . ..."), from a random stream no demo image uses.

    Two captions of one thing per line, as text mentions one thing several times: a masked word
    is then told by the other caption, so masked-language modelling must keep each word's
    identity (with independent words alone it learns that any colour fits a colour's place, and
    "red" and "blue" end up with the same embedding).
    """
    rng = random.Random("retrieval text-encoder pretraining corpus")
    lines = []
    for _ in range(descriptions):
        shape, colour = rng.choice(list(SHAPE_WORDS)), rng.choice(list(COLOURS))
        size, position = rng.choice(list(SIZE_RADIUS)), rng.choice(list(POSITION_CENTRES))
        first, second = describe(shape, colour, size, position, rng)[:2]
        lines.append(f"{first} . {second}")
    return lines


def make_demo_data(root: Path, seed: int = 0, encoders: bool = True, images: int = NUM_IMAGES) -> None:
    """Write Images/ and captions.txt (Kaggle csv, header `image,caption`) under root, and
    (unless `encoders` is False) the pretrained encoders under root/pretrained/.

    `images` images (800; tests write fewer) with 5 captions each; the reader's generated split
    makes 600 train, 100 val and 100 test of 800. The same seed writes the same bytes.
    """
    root = Path(root)
    (root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    rows: list[tuple[str, str]] = []
    for index in range(images):
        shape, colour = rng.choice(list(SHAPE_WORDS)), rng.choice(list(COLOURS))
        size, position = rng.choice(list(SIZE_RADIUS)), rng.choice(list(POSITION_CENTRES))
        name = f"shape_{index:05d}.png"
        render_image(shape, colour, size, position, rng, noise).save(root / IMAGES_DIR / name)
        rows.extend((name, caption) for caption in describe(shape, colour, size, position, rng))
    with (root / KAGGLE_CAPTIONS_FILE).open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image", "caption"])
        writer.writerows(rows)
    if encoders:
        place_image_encoder(root)
        place_text_encoder(root, pretraining_captions())
