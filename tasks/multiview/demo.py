"""A procedural multiview dataset written as ModelNet40 MVCNN renders: drawn objects, 4 views each.

Layout (tasks/multiview/layouts/mvcnn.py): `<class>/<train|test>/<class>_<NNNN>.obj.shaded_v<VVV>.png`,
so the default demo runs the real reader, split and pair generation. A class is a body shape (5
kinds) in a body colour (8 hues, jittered), all 40 pairings, e.g. `hexagon_teal`; its 32 objects
carry a marking in a dark shade of the body colour (each object its own shade, all close) on one
quarter of the body (top left, top right, bottom left or bottom right), in one of the class's two
patterns (of 7: stripes, dots, checks, a ring, a cross), drawn coarse or fine, in bold or
light strokes. So a classmate is a hard negative told apart mostly by which quarter
carries the marking. The demos' encoder, pretrained to name shapes and colours wherever they are
(tasks/common/pretext_shapes.py), keeps only some of where a marking sits (a linear probe on its
frozen features names the quarter of 71% of held-out views, chance 25%), and kept frozen under a
trained projection head it tells few classmates apart (val AUROC about 0.6); fine-tuned, at a
good rate, it learns where the marking is (about 0.9). With the marking on a half of the body
instead (top, bottom, left or right) the frozen encoder told classmates apart better (0.65
against 0.58 for quarters, in a 20-class version otherwise alike). Each object is drawn four
times at 32x32: v001 from the front (small jitter), v002..v004 at an angle (horizontal squash
with perspective, shear, rotation within 25 degrees, so a marked quarter stays where it is, a
change of lighting, and in a quarter of them a grey bar in front). As in ModelNet40, objects are
numbered per class and the first ones are train, the last ones test: 26 and 6 per class, 1040
and 240 objects; the task carves val out of train by object (200 objects), leaving 840 to train.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from tasks.common.demo_encoders import place_image_encoder

IMAGE_SIDE = 32
CANVAS = 64  # drawn at twice the size, then downsampled: smooth edges at 32x32
# Every (shape, colour) pairing: twice the 20 classes of before, so twice the training steps an
# epoch, and configs that fine-tune at a moderate rate learn where markings sit within the budget.
CLASSES = 40
TRAIN_OBJECTS_PER_CLASS = 26  # of 32 (2 patterns x 2 scales x 2 strokes x 4 quarters); the other 6 are test
VIEWS = 4  # v001 front, the others angled
BACKGROUND = (222, 222, 218)

SHAPES = ("circle", "square", "triangle", "hexagon", "diamond")
PATTERNS = ("horizontal_stripes", "vertical_stripes", "diagonal_stripes", "dots", "checks", "ring",
            "cross")
PATTERNS_PER_CLASS = 2  # few, so that most classmates share a texture and differ by the quarter
# The marked quarter, in the object's own frame.
QUARTERS = ("top_left", "top_right", "bottom_left", "bottom_right")
SCALES = {"coarse": 1.0, "fine": 0.6}  # marking size factor
BODY_COLOURS = {
    "red": (205, 50, 45),
    "green": (45, 150, 65),
    "blue": (45, 85, 210),
    "yellow": (225, 190, 40),
    "purple": (140, 60, 175),
    "orange": (235, 125, 30),
    "teal": (40, 170, 175),
    "pink": (200, 70, 140),
}
STROKES = {"bold": 1.0, "light": 0.5}  # marking stroke weight factor
# An object's ink: its body colour times a factor in this range. The shades lie close, so that
# ink, a cue the frozen encoder sees, tells few classmates apart.
DARK_INK_SHADE = (0.3, 0.45)
NOISE_STD = 8.0  # pixel noise of every render
OCCLUDED_SHARE = 0.25  # angled views with a grey bar (a pole, a table edge) across the object


@dataclass(frozen=True)
class DemoObject:
    """What makes an object: its class (body shape and colour), its ink, and its marking's
    pattern, scale, stroke weight and quarter."""

    class_name: str
    number: int  # 1-based within the class, as in ModelNet40's <class>_<NNNN>
    split: str
    shape: str
    body: tuple[int, int, int]
    ink: tuple[int, int, int]
    pattern: str
    scale: float
    stroke: float
    quarter: str


def shape_polygon(shape: str, centre: float, radius: float) -> list[tuple[float, float]]:
    """Outline points of a body shape centred on the canvas."""
    corners = {"circle": 48, "square": 4, "triangle": 3, "hexagon": 6, "diamond": 4}[shape]
    start = {"square": math.pi / 4, "triangle": -math.pi / 2, "hexagon": 0.0}.get(shape, 0.0)
    stretch = (0.75, 1.0) if shape == "diamond" else (1.0, 1.0)
    return [
        (
            centre + stretch[0] * radius * math.cos(start + 2 * math.pi * k / corners),
            centre + stretch[1] * radius * math.sin(start + 2 * math.pi * k / corners),
        )
        for k in range(corners)
    ]


def draw_pattern(
    draw: ImageDraw.ImageDraw, pattern: str, ink: tuple[int, ...], scale: float = 1.0, stroke: float = 1.0
) -> None:
    """The marking over the whole canvas, its features `scale` times the coarse size and its
    strokes (lines, dots, squares) `stroke` times the bold weight; the body's mask later clips it
    to the object."""
    period, width = round(14 * scale), max(2, round(6 * scale * stroke))
    middle = CANVAS / 2
    if pattern == "horizontal_stripes":
        for y in range(0, CANVAS, period):
            draw.rectangle([0, y, CANVAS, y + width - 1], fill=ink)
    elif pattern == "vertical_stripes":
        for x in range(0, CANVAS, period):
            draw.rectangle([x, 0, x + width - 1, CANVAS], fill=ink)
    elif pattern == "diagonal_stripes":
        for offset in range(-CANVAS, CANVAS, period + 4):
            draw.line([(offset, CANVAS), (offset + CANVAS, 0)], fill=ink, width=width)
    elif pattern == "dots":
        step, radius = round(15 * scale), 4 * scale * stroke
        for y in range(6, CANVAS, step):
            for x in range(6, CANVAS, step):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=ink)
    elif pattern == "checks":
        cell = round(11 * scale)
        side = max(2, round(cell * stroke))
        for y in range(0, CANVAS, cell):
            for x in range(0, CANVAS, cell):
                if (x // cell + y // cell) % 2 == 0:
                    draw.rectangle([x, y, x + side - 1, y + side - 1], fill=ink)
    elif pattern == "ring":
        radius = 14 * scale
        draw.ellipse([middle - radius, middle - radius, middle + radius, middle + radius],
                     outline=ink, width=max(2, round(7 * scale * stroke)))
    elif pattern == "cross":
        arm = 4 * scale * stroke
        draw.rectangle([middle - arm, 0, middle + arm, CANVAS], fill=ink)
        draw.rectangle([0, middle - arm, CANVAS, middle + arm], fill=ink)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")


def quarter_mask(quarter: str) -> Image.Image:
    """An L mask of one quarter of the canvas (one of QUARTERS), where the marking may be painted."""
    half = CANVAS / 2
    box = {"top_left": [0, 0, half, half], "top_right": [half, 0, CANVAS, half],
           "bottom_left": [0, half, half, CANVAS], "bottom_right": [half, half, CANVAS, CANVAS]}[quarter]
    mask = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def draw_object(item: DemoObject) -> Image.Image:
    """The object alone, front-on, as an RGBA canvas with a transparent background: the body,
    its marking on the marked quarter only."""
    mask = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(mask).polygon(shape_polygon(item.shape, CANVAS / 2, 22), fill=255)
    painted = Image.new("RGBA", (CANVAS, CANVAS), (*item.body, 255))
    marking = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw_pattern(ImageDraw.Draw(marking), item.pattern, (*item.ink, 255), item.scale, item.stroke)
    painted.paste(marking, (0, 0), ImageChops.multiply(marking.getchannel("A"), quarter_mask(item.quarter)))
    layer = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    layer.paste(painted, (0, 0), mask)
    return layer


def perspective_coefficients(
    output_quad: list[tuple[float, float]], input_quad: list[tuple[float, float]]
) -> list[float]:
    """PIL's 8 perspective coefficients mapping each output corner to its input corner."""
    rows, targets = [], []
    for (x, y), (u, v) in zip(output_quad, input_quad):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        targets += [u, v]
    return np.linalg.solve(np.array(rows, dtype=float), np.array(targets, dtype=float)).tolist()


def view_quad(
    squash: float, near_side: float, shear: float, angle: float, shift: tuple[float, float]
) -> list[tuple[float, float]]:
    """Where the canvas corners land: squashed sideways, one side nearer, sheared, rotated."""
    half = CANVAS / 2
    far_side = 2.0 - near_side
    corners = [
        (-half * squash, -half * far_side),
        (half * squash, -half * near_side),
        (half * squash, half * near_side),
        (-half * squash, half * far_side),
    ]
    cos, sin = math.cos(angle), math.sin(angle)
    quad = []
    for x, y in corners:
        x = x + shear * y
        quad.append((half + shift[0] + cos * x - sin * y, half + shift[1] + sin * x + cos * y))
    return quad


def render_view(
    layer: Image.Image,
    quad: list[tuple[float, float]],
    lighting: tuple[float, float],
    noise: np.ndarray,
    occluder: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    """Place the object layer at `quad` on the background, put the occluder (a box on the
    canvas) in front, relight, add noise, downsample."""
    source = [(0, 0), (CANVAS, 0), (CANVAS, CANVAS), (0, CANVAS)]
    warped = layer.transform(
        (CANVAS, CANVAS),
        Image.Transform.PERSPECTIVE,
        perspective_coefficients(quad, source),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0, 0),
    )
    canvas = Image.new("RGBA", (CANVAS, CANVAS), (*BACKGROUND, 255))
    canvas.alpha_composite(warped)
    if occluder is not None:
        ImageDraw.Draw(canvas).rectangle(occluder, fill=(150, 150, 145, 255))
    small = canvas.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float64)
    brightness, gradient = lighting
    ramp = brightness + gradient * np.linspace(-1.0, 1.0, IMAGE_SIDE)[None, :, None]
    pixels = np.clip(pixels * ramp + noise, 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def front_view(layer: Image.Image, rng: random.Random, noise: np.ndarray) -> Image.Image:
    quad = view_quad(
        squash=rng.uniform(0.95, 1.05),
        near_side=1.0,
        shear=0.0,
        angle=math.radians(rng.uniform(-4, 4)),
        shift=(rng.uniform(-2, 2), rng.uniform(-2, 2)),
    )
    return render_view(layer, quad, (rng.uniform(0.97, 1.03), 0.0), noise)


def angled_view(layer: Image.Image, rng: random.Random, noise: np.ndarray) -> Image.Image:
    side = rng.choice((-1, 1))  # turned to the left or to the right
    quad = view_quad(
        squash=rng.uniform(0.6, 0.85),
        near_side=1.0 + side * rng.uniform(0.08, 0.2),
        shear=rng.uniform(-0.25, 0.25),
        angle=math.radians(rng.uniform(-25, 25)),
        shift=(rng.uniform(-4, 4), rng.uniform(-4, 4)),
    )
    lighting = (rng.uniform(0.75, 1.25), side * rng.uniform(0.05, 0.2))
    occluder = None
    if rng.random() < OCCLUDED_SHARE:  # a vertical or horizontal bar, 8-14 px of the 64 px canvas
        start, width = rng.uniform(16, 40), rng.uniform(8, 14)
        occluder = ((start, 0, start + width, CANVAS) if rng.random() < 0.5
                    else (0, start, CANVAS, start + width))
    return render_view(layer, quad, lighting, noise, occluder)


def jittered(colour: tuple[int, int, int], rng: random.Random, spread: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, channel + rng.randint(-spread, spread))) for channel in colour)


def make_objects(rng: random.Random) -> list[DemoObject]:
    """Every object: CLASSES classes of distinct (shape, colour), each with PATTERNS_PER_CLASS
    patterns x 2 scales x 2 stroke weights x 4 quarters, every object in its own shade of ink."""
    combinations = [(shape, colour) for shape in SHAPES for colour in BODY_COLOURS]
    objects = []
    for shape, colour in rng.sample(combinations, CLASSES):
        body = jittered(BODY_COLOURS[colour], rng, 20)
        patterns = rng.sample(PATTERNS, PATTERNS_PER_CLASS)
        markings = [(pattern, scale, stroke, quarter) for pattern in patterns for scale in SCALES.values()
                    for stroke in STROKES.values() for quarter in QUARTERS]
        markings = rng.sample(markings, len(markings))
        for number, (pattern, scale, stroke, quarter) in enumerate(markings, start=1):
            split = "train" if number <= TRAIN_OBJECTS_PER_CLASS else "test"
            ink = tuple(int(channel * rng.uniform(*DARK_INK_SHADE)) for channel in body)
            objects.append(DemoObject(f"{shape}_{colour}", number, split, shape, body, ink, pattern,
                                      scale, stroke, quarter))
    return objects


def image_name(item: DemoObject, view: int) -> str:
    """The render's path, e.g. `hexagon_teal/train/hexagon_teal_0003.obj.shaded_v002.png`."""
    return f"{item.class_name}/{item.split}/{item.class_name}_{item.number:04d}.obj.shaded_v{view:03d}.png"


def make_demo_data(root: Path, seed: int = 0, encoders: bool = True) -> None:
    """Write the render tree under root (created if missing); deterministic in seed."""
    root = Path(root)
    rng = random.Random(seed)
    noise_rng = np.random.default_rng(seed)
    for item in make_objects(rng):
        (root / item.class_name / item.split).mkdir(parents=True, exist_ok=True)
        layer = draw_object(item)
        for view in range(1, VIEWS + 1):
            render = front_view if view == 1 else angled_view
            noise = noise_rng.normal(0.0, NOISE_STD, (IMAGE_SIDE, IMAGE_SIDE, 3))
            render(layer, rng, noise).save(root / image_name(item, view))
    if encoders:  # the pretrained image encoder the search space names (demo_encoders.py)
        place_image_encoder(root)
