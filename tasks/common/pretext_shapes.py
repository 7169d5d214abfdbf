"""The image pretext pool: drawn scenes whose main object's shape and colour are the labels.

The demos' pretrained image encoder learns from these, never from a demo's own train or val
images (those are drawn by each task's demo.py, from other generators and seeds). Each 32x32
scene has a plain or two-tone background with pixel noise, one or two small grey distractor
blobs, and one main object: one of SHAPES, filled with one of COLOURS (hue jittered), at a
random size, position and rotation. Only shape and colour are labelled, so the encoder learns
what objects look like while staying blind to where they are and how large (as an ImageNet
classifier is): a task that needs position or size must fine-tune it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

IMAGE_SIDE = 32
SUPERSAMPLING = 2  # drawn at 64 px, downsampled: smooth edges
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "hexagon", "star", "ring")
COLOURS = {
    "red": (210, 45, 40),
    "orange": (240, 135, 30),
    "yellow": (230, 205, 40),
    "lime": (150, 215, 50),
    "green": (40, 150, 60),
    "teal": (40, 165, 170),
    "blue": (45, 85, 215),
    "purple": (135, 60, 180),
    "pink": (215, 80, 150),
    "brown": (130, 85, 45),
    "black": (30, 30, 35),
    "white": (245, 245, 240),
}
LABELS = {"shape": len(SHAPES), "colour": len(COLOURS)}


def shape_outline(shape: str, x: float, y: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """Polygon points of a shape centred at (x, y) (a ring is drawn as a thick circle outline)."""
    if shape == "circle":
        corners, radii = 40, [1.0]
    elif shape == "square":
        corners, radii, angle = 4, [1.0], angle + math.pi / 4
    elif shape == "triangle":
        corners, radii = 3, [1.0]
    elif shape == "diamond":
        corners, radii = 4, [1.0, 0.6]
    elif shape == "hexagon":
        corners, radii = 6, [1.0]
    elif shape == "star":
        corners, radii = 10, [1.0, 0.45]
    elif shape == "cross":
        arm = 0.35
        points = [(-arm, -1), (arm, -1), (arm, -arm), (1, -arm), (1, arm), (arm, arm), (arm, 1),
                  (-arm, 1), (-arm, arm), (-1, arm), (-1, -arm), (-arm, -arm)]
        cos, sin = math.cos(angle), math.sin(angle)
        return [(x + radius * (px * cos - py * sin), y + radius * (px * sin + py * cos)) for px, py in points]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return [
        (
            x + radius * radii[k % len(radii)] * math.cos(angle + 2 * math.pi * k / corners),
            y + radius * radii[k % len(radii)] * math.sin(angle + 2 * math.pi * k / corners),
        )
        for k in range(corners)
    ]


def draw_scene(rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """One (32, 32, 3) uint8 scene and its main object's (shape index, colour index)."""
    side = IMAGE_SIDE * SUPERSAMPLING
    base = rng.integers(60, 246, 3)
    image = Image.new("RGB", (side, side), tuple(int(c) for c in base))
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.5:  # two-tone background: a horizon at a random height
        other = np.clip(base + rng.integers(-60, 61, 3), 0, 255)
        draw.rectangle([0, int(rng.uniform(0.2, 0.8) * side), side, side], fill=tuple(int(c) for c in other))
    for _ in range(int(rng.integers(1, 3))):  # grey distractor blobs
        grey = int(rng.integers(70, 200))
        x, y, r = rng.uniform(0, side, 2).tolist() + [rng.uniform(2, 6) * SUPERSAMPLING]
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(grey, grey, grey))
    shape_index, colour_index = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
    colour = np.clip(np.array(list(COLOURS.values())[colour_index]) + rng.integers(-20, 21, 3), 0, 255)
    radius = rng.uniform(5, 12) * SUPERSAMPLING
    x, y = rng.uniform(radius, side - radius, 2)
    shape = SHAPES[shape_index]
    fill = tuple(int(c) for c in colour)
    if shape == "ring":
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=fill,
                     width=max(2, int(0.45 * radius)))
    else:
        draw.polygon(shape_outline(shape, x, y, radius, rng.uniform(0, 2 * math.pi)), fill=fill)
    small = image.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32) + rng.normal(0, 8.0, (IMAGE_SIDE, IMAGE_SIDE, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8), shape_index, colour_index


def pretext_pool(count: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`count` scenes as (count, 3, 32, 32) uint8 and their labels {"shape", "colour"} (count,)
    long; deterministic in seed."""
    rng = np.random.default_rng([seed, 7919])  # a stream of its own, apart from the demos'
    images = np.empty((count, IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
    shapes = np.empty(count, dtype=np.int64)
    colours = np.empty(count, dtype=np.int64)
    for index in range(count):
        images[index], shapes[index], colours[index] = draw_scene(rng)
    return (
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        {"shape": torch.from_numpy(shapes), "colour": torch.from_numpy(colours)},
    )
