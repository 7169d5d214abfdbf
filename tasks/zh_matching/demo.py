"""A synthetic stand-in for a Chinese precomp dataset: scenes of coloured objects, as region
features, with 5 truthful Chinese captions per image, in the SCAN/SGRAF layout.

Each image shows 1-3 objects, each a (colour, object) pair such as 红色 汽车 or 白色 狗, in
one of 5 scenes (路边, 草地, ...). Its 36 "regions" are 2048-d float32 vectors like detector
features: every object covers 4-8 regions, each its (colour, object) prototype plus noise (the
prototype is the object's vector plus the colour's plus a pair-specific part, all fixed random
vectors from the seeded generator), and the remaining regions show the scene's background
prototype plus noise. (Real bottom-up-attention features are non-negative; a ReLU here would
give every region a large shared mean, which the pooled-feature collapse probe reads as
near-collapse at initialisation, so the demo keeps them zero-mean.) The 5 captions use 5
different templates ("路边有一辆红色的汽车和一只白色的狗", "图中可以看到红色汽车、白色狗", ...)
that name every object with its colour, and usually the scene. The only link between a caption
and its image is which prototypes its regions carry, so a matcher must learn words -> region
directions. As in COCO, where many images show the same kind of scene, most images have a near
duplicate in their split (NEAR_DUPLICATE_SHARE of them come in pairs): the same scene and
objects with one difference, two objects' colours swapped (红色汽车和白色狗 against 白色汽车和红色狗,
which only the colour-object binding tells apart), one object's colour changed, or one object
replaced by another. Retrieving the right one of the two needs every word bound to its region;
a matcher that pools away which colour goes with which object cannot. Splits train, dev, test and testall (100 images: 5 folds of 20 for the 1K-style
protocol), one feature row per image (SCAN's im_div 5); no vocabulary json, so the vocabulary
is built from the training captions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.zh_matching.data import CAPTIONS_PER_IMAGE, captions_path, features_path

# testall (COCO's 5K test in the real data) is scored whole and as 5 folds of 20 images.
SPLIT_SIZES = {"train": 240, "val": 100, "test": 50, "testall": 100}
NUM_REGIONS = 36
FEATURE_DIM = 2048
REGIONS_PER_OBJECT = (4, 8)  # inclusive range
NOISE_STD = 6.0  # 4x a prototype's spread per dimension (1.5): a match must pool several regions

COLOURS = ["红色", "蓝色", "白色", "黑色", "绿色", "黄色"]
OBJECTS = {  # object -> its measure word
    "汽车": "辆",
    "自行车": "辆",
    "公交车": "辆",
    "狗": "只",
    "猫": "只",
    "鸟": "只",
    "船": "艘",
    "风筝": "只",
}
SCENES = {  # scene noun -> the phrase for "at that place"
    "路边": "路边",
    "草地": "草地上",
    "河边": "河边",
    "公园": "公园里",
    "广场": "广场上",
}
OBJECT_COUNT_WEIGHTS = {1: 0.2, 2: 0.45, 3: 0.35}
NEAR_DUPLICATE_SHARE = 0.6  # of the images: drawn as a pair, an image and its one-change variant
TEMPLATES = [
    "{place}有{full_and}",
    "{first_full}在{place}{rest_clause}",
    "图中可以看到{short_list}",
    "这张照片里有{full_and}，背景是{scene}",
    "{scene}：{short_list}",
    "一张{scene}的照片，上面有{full_and}",
    "{short_and}出现在{place}",
]


def join_and(phrases: list[str]) -> str:
    """["A"] -> "A"; ["A", "B"] -> "A和B"; ["A", "B", "C"] -> "A、B和C"."""
    return phrases[0] if len(phrases) == 1 else "、".join(phrases[:-1]) + "和" + phrases[-1]


def caption(template: str, scene: str, objects: list[tuple[str, str]]) -> str:
    """Fill one template for a scene and its (colour, object) list, in the order given."""
    full = [f"一{OBJECTS[name]}{colour}的{name}" for colour, name in objects]
    short = [f"{colour}{name}" for colour, name in objects]
    rest = f"，旁边还有{join_and(full[1:])}" if len(full) > 1 else ""
    return template.format(
        place=SCENES[scene],
        scene=scene,
        full_and=join_and(full),
        first_full=full[0],
        rest_clause=rest,
        short_list="、".join(short),
        short_and=join_and(short),
    )


class Prototypes:
    """The fixed random vectors the region features are built from (one seeded draw)."""

    def __init__(self, rng: np.random.Generator):
        def draw(*shape: int) -> np.ndarray:
            return rng.standard_normal((*shape, FEATURE_DIM)).astype(np.float32)

        self.colour = draw(len(COLOURS))
        self.object = draw(len(OBJECTS))
        self.pair = draw(len(COLOURS), len(OBJECTS))
        self.scene = draw(len(SCENES))

    def of_object(self, colour: str, name: str) -> np.ndarray:
        c, o = COLOURS.index(colour), list(OBJECTS).index(name)
        return self.object[o] + self.colour[c] + 0.5 * self.pair[c, o]

    def of_scene(self, scene: str) -> np.ndarray:
        return 1.5 * self.scene[list(SCENES).index(scene)]


def draw_image(rng: np.random.Generator) -> tuple[str, list[tuple[str, str]]]:
    """A random scene and 1-3 (colour, object) pairs of distinct objects."""
    counts = list(OBJECT_COUNT_WEIGHTS)
    count = int(rng.choice(counts, p=list(OBJECT_COUNT_WEIGHTS.values())))
    names = rng.choice(list(OBJECTS), size=count, replace=False)
    colours = rng.choice(COLOURS, size=count)
    scene = str(rng.choice(list(SCENES)))
    return scene, [(str(colour), str(name)) for colour, name in zip(colours, names)]


def near_duplicate(
    rng: np.random.Generator, objects: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The objects with one change: two colours swapped (when two differ), one colour changed,
    or one object replaced by one the image does not show, with its colour kept."""
    changes = ["recolour", "replace"]
    if len({colour for colour, _ in objects}) > 1:
        changes.append("swap")
    change = str(rng.choice(changes))
    changed = list(objects)
    if change == "swap":
        while True:
            i, j = (int(k) for k in rng.choice(len(objects), size=2, replace=False))
            if objects[i][0] != objects[j][0]:
                break
        changed[i], changed[j] = (objects[j][0], objects[i][1]), (objects[i][0], objects[j][1])
    elif change == "recolour":
        i = int(rng.integers(len(objects)))
        colour = str(rng.choice([c for c in COLOURS if c != objects[i][0]]))
        changed[i] = (colour, objects[i][1])
    else:
        i = int(rng.integers(len(objects)))
        shown = {name for _, name in objects}
        changed[i] = (objects[i][0], str(rng.choice([n for n in OBJECTS if n not in shown])))
    return changed


def draw_images(rng: np.random.Generator, count: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """`count` (scene, objects) images; NEAR_DUPLICATE_SHARE of them in adjacent near-duplicate
    pairs (an image, then its one-change variant), the rest drawn alone."""
    images: list[tuple[str, list[tuple[str, str]]]] = []
    while len(images) < count:
        scene, objects = draw_image(rng)
        images.append((scene, objects))
        if len(images) < count and rng.random() < NEAR_DUPLICATE_SHARE / (2 - NEAR_DUPLICATE_SHARE):
            images.append((scene, near_duplicate(rng, objects)))
    return images


def region_features(
    rng: np.random.Generator, prototypes: Prototypes, scene: str, objects: list[tuple[str, str]]
) -> np.ndarray:
    """(NUM_REGIONS, FEATURE_DIM) float32: object regions, then background, in shuffled order."""
    centres = []
    for colour, name in objects:
        low, high = REGIONS_PER_OBJECT
        centres += [prototypes.of_object(colour, name)] * int(rng.integers(low, high + 1))
    centres += [prototypes.of_scene(scene)] * (NUM_REGIONS - len(centres))
    regions = np.stack(centres) + NOISE_STD * rng.standard_normal((NUM_REGIONS, FEATURE_DIM))
    return regions[rng.permutation(NUM_REGIONS)].astype(np.float32)


def image_captions(
    rng: np.random.Generator, scene: str, objects: list[tuple[str, str]]
) -> list[str]:
    """5 captions from 5 different templates, each naming the objects in a fresh order."""
    templates = rng.choice(len(TEMPLATES), size=CAPTIONS_PER_IMAGE, replace=False)
    return [
        caption(TEMPLATES[t], scene, [objects[i] for i in rng.permutation(len(objects))])
        for t in templates
    ]


def make_demo_data(root: Path, seed: int = 0) -> None:
    """Write {train,dev,test,testall}_ims.npy (float32 N x 36 x 2048, one row per image:
    SCAN's im_div 5) and _caps.txt (5N lines) under root, deterministic in seed (about 145 MB)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    prototypes = Prototypes(np.random.default_rng([seed, 0]))
    for split_number, (split, size) in enumerate(SPLIT_SIZES.items(), start=1):
        rng = np.random.default_rng([seed, split_number])
        features = np.lib.format.open_memmap(
            features_path(root, split), mode="w+", dtype=np.float32,
            shape=(size, NUM_REGIONS, FEATURE_DIM),
        )
        lines = []
        for index, (scene, objects) in enumerate(draw_images(rng, size)):
            features[index] = region_features(rng, prototypes, scene, objects)
            lines += image_captions(rng, scene, objects)
        features.flush()
        del features
        captions_path(root, split).write_text("\n".join(lines) + "\n", encoding="utf-8")
