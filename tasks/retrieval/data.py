"""A Flickr8k / Flickr30k dataset as the retrieval task reads it: which images form each split,
their captions, every problem found, and decoding a split's images.

The layouts, and which file wins when several could serve, are in layout.py; the file formats in
caption_files.py, karpathy_json.py and split_sources.py. Every image of a split must have
exactly 5 captions: the retrieval metrics compare N images with their 5N captions.
How training pairs are drawn from a split is in sampling.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from tasks.base import DataError, DataReport
from tasks.common.data_problems import ProblemList
from tasks.common.image_loading import load_image_uint8
from tasks.retrieval.caption_files import parse_caption_file
from tasks.retrieval.karpathy_json import read_karpathy_json
from tasks.retrieval.layout import FlickrLayout, find_layout
from tasks.retrieval.split_sources import (
    SPLIT_FILES,
    SPLITS,
    generated_split,
    read_split_files,
)

CAPTIONS_PER_IMAGE = 5
UNIT = "images"


@dataclass
class FlickrIndex:
    """The dataset as resolved on disk: images of each split (in split order) and all captions.

    sources: one line per choice made (caption file, split source, tolerated quirks).
    origin: (split, image) -> where that image was listed ("file:line", or a file name).
    """

    layout: FlickrLayout
    split_images: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    captions: dict[str, list[str]] = field(default_factory=dict)
    origin: dict[tuple[str, str], str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    @property
    def images_dir(self) -> Path:
        return self.layout.images_dir


@dataclass
class RetrievalSplit:
    """One split as loaded: images in split order, their captions image-major.

    images: (N, 3, S, S) uint8; captions: 5N strings, caption j of image caption_image_index[j];
    caption_image_index: (5N,) long, equal to arange(N).repeat_interleave(5).
    """

    image_names: list[str]
    images: torch.Tensor
    captions: list[str]
    caption_image_index: torch.Tensor


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def resolve_from_karpathy(index: FlickrIndex, problems: ProblemList) -> None:
    path = index.layout.karpathy_json
    karpathy = read_karpathy_json(path)
    for line in karpathy.problems:
        problems.add(line)
    for split in SPLITS if not karpathy.problems else ():
        if not karpathy.split_images[split]:
            problems.add(f"{path}: no image has split {split!r}; a json for this task needs train, val and test")
    index.split_images, index.captions = karpathy.split_images, karpathy.captions
    index.origin = {(s, n): str(path) for s, names in karpathy.split_images.items() for n in names}
    restval = f"; its {karpathy.restval_count} restval images joined to train" if karpathy.restval_count else ""
    index.sources.append(
        f"split and captions: {index.layout.relative(path)} (Karpathy's split{restval})"
    )


def resolve_from_files(index: FlickrIndex, present: set[str], problems: ProblemList) -> None:
    layout = index.layout
    if layout.caption_file is not None:
        table = parse_caption_file(layout.caption_file)
        for line in table.problems:
            problems.add(line)
        index.captions = table.captions
        index.sources.append(f"captions: {layout.relative(layout.caption_file)}")
        index.sources += table.notes
    if layout.split_files is not None:
        split_list = read_split_files(layout.split_files)
        for line in split_list.problems:
            problems.add(line)
        index.split_images, index.origin = split_list.split_images, split_list.origin
        folders = sorted({layout.relative(p.parent) for p in layout.split_files.values() if p})
        where = ", ".join(f"{folder}/" for folder in folders if folder != ".")
        index.sources.append(
            f"split: {where}Flickr_8k.{{train,dev,test}}Images.txt (the published split)"
        )
    elif index.captions:
        generate_split(index, present, problems)


def generate_split(index: FlickrIndex, present: set[str], problems: ProblemList) -> None:
    """Split the captioned images that are in the image folder (no split file exists)."""
    caption_file = index.layout.caption_file
    usable = [name for name in index.captions if name in present]
    absent = [name for name in index.captions if name not in present]
    if absent:
        index.sources.append(
            f"{caption_file.name}: {len(absent)} captioned image(s) not in the image folder "
            f"(first {absent[0]}), left out of the generated split"
        )
    if len(usable) < len(SPLITS):
        problems.add(
            f"{caption_file}: {len(usable)} of its images are in the image folder; a split needs "
            "at least 3; put the images in the image folder"
        )
        return
    index.split_images = generated_split(usable)
    index.origin = {(s, n): str(caption_file) for s, names in index.split_images.items() for n in names}
    sizes = "/".join(str(len(index.split_images[s])) for s in SPLITS)
    index.sources.append(
        f"split: none in the download (no {SPLIT_FILES['train']} etc., no dataset_flickr8k.json): "
        f"generated {sizes} (train/val/test) from a hash of each file name, deterministic; "
        "not the published split: add the split files or Karpathy's json to compare with papers"
    )


def check_split_images(
    index: FlickrIndex, present: set[str], problems: ProblemList, leaks: list[str], open_headers: bool
) -> None:
    """Every split image exists, has 5 captions, is in one split only, and (if asked) opens."""
    images_dir = index.images_dir
    splits_of: dict[str, list[str]] = defaultdict(list)
    for split in SPLITS:
        for name in index.split_images[split]:
            splits_of[name].append(split)
            where = index.origin.get((split, name), split)
            if name not in present:
                problems.add(f"{where}: names {name}, which is not in {images_dir}; add the image or remove it")
                continue
            count = len(index.captions.get(name, []))
            # Without any caption read, the caption source's own problem says it all.
            if index.captions and count != CAPTIONS_PER_IMAGE:
                problems.add(
                    f"{images_dir / name}: has {count} captions, needs exactly {CAPTIONS_PER_IMAGE}; "
                    f"fix the captions or remove it from the {split} split ({where})"
                )
            if open_headers:
                try:
                    with Image.open(images_dir / name):
                        pass
                except Exception as error:  # PIL raises several types for unreadable files
                    problems.add(
                        f"{images_dir / name}: unreadable image ({first_line(error)}); replace it "
                        f"or remove it from the {split} split"
                    )
    shared = [name for name, splits in splits_of.items() if len(splits) > 1]
    if shared:
        leaks.append(
            f"{len(shared)} image(s) are in more than one split (first {shared[0]} in "
            f"{' and '.join(splits_of[shared[0]])}): evaluation would score training images; "
            "list each image in one split"
        )


def inspect_flickr(data_dir: Path, open_headers: bool = True) -> tuple[FlickrIndex, DataReport]:
    """Resolve the layout under data_dir and check it: (the index, the report with every problem).

    open_headers: open every split image's header (the cheap image check); off when building a
    trial after the sweep already checked the data. Never raises for problems in the data.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        layout = FlickrLayout(data_dir=data_dir)
        report = DataReport(layout="not recognised", unit=UNIT, problems=[
            f"{data_dir}: missing or empty; put a Flickr8k or Flickr30k dataset there or run the demo"
        ])
        return FlickrIndex(layout), report
    layout = find_layout(data_dir)
    index = FlickrIndex(layout)
    problems = ProblemList()
    for line in layout.problems:
        problems.add(line)
    present = {path.name for path in layout.images_dir.iterdir()} if layout.images_dir else set()
    if layout.images_dir is not None and not present:
        problems.add(f"{layout.images_dir}: empty; unpack the dataset's images into it")
    if layout.karpathy_json is not None:
        resolve_from_karpathy(index, problems)
    else:
        resolve_from_files(index, present, problems)
    index.sources += layout.notes
    leaks: list[str] = []
    if present and any(index.split_images.values()):
        check_split_images(index, present, problems, leaks, open_headers)
    report = DataReport(
        layout=layout.name,
        splits={split: len(index.split_images[split]) for split in SPLITS},
        unit=UNIT,
        sources=index.sources,
        problems=problems.lines,
        leaks=leaks,
    )
    return index, report


def check_data(data_dir: Path) -> DataReport:
    """The data report of data_dir: layout, images per split, sources, every problem (headers
    opened, no pixels decoded)."""
    return inspect_flickr(data_dir, open_headers=True)[1]


def read_index(data_dir: Path) -> FlickrIndex:
    """The resolved dataset for a trial; DataError (the first problem and a count) when the data
    has problems. Label leaks were refused or allowed by the caller that checked the data."""
    index, report = inspect_flickr(data_dir, open_headers=False)
    report.raise_if_unusable(allow_leaks=True)
    return index


def load_split(
    index: FlickrIndex, split: str, image_size: int, max_images: int | None = None
) -> RetrievalSplit:
    """Decode a split's images once into uint8 tensors and gather its captions image-major;
    only the split's first `max_images` images (in split order) when it is given.

    Raises DataError naming a file that fails to decode.
    """
    names = index.split_images[split][:max_images]
    images = torch.empty((len(names), 3, image_size, image_size), dtype=torch.uint8)
    for position, name in enumerate(names):
        path = index.images_dir / name
        try:
            images[position] = load_image_uint8(path, image_size)
        except Exception as error:  # PIL raises several types for corrupt files
            raise DataError(
                f"{path}: cannot decode image ({first_line(error)}); replace it or remove it from "
                f"the {split} split"
            ) from None
    captions = [caption for name in names for caption in index.captions[name]]
    return RetrievalSplit(
        image_names=names,
        images=images,
        captions=captions,
        caption_image_index=torch.arange(len(names)).repeat_interleave(CAPTIONS_PER_IMAGE),
    )
