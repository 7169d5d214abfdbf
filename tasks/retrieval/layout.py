"""Which Flickr layout a directory holds, and where its images, captions and split are.

Layouts recognised under data_dir (text files may sit in data_dir or in `Flickr8k_text/`):
- original zips as they unpack: `Flicker8k_Dataset/` (sic, the zip's spelling; `Flickr8k_Dataset/`
  too) + `Flickr8k_text/` (Flickr8k.token.txt, Flickr8k.lemma.token.txt, Flickr_8k.*Images.txt);
- Kaggle download: `Images/` + `captions.txt` (csv), no split files;
- images + split files + caption file: `Images/` + Flickr_8k.*Images.txt + captions.txt or
  Flickr8k.token.txt (the layout this project's README used to require);
- any of them with Karpathy's `dataset_flickr8k.json`, or Flickr30k: `flickr30k-images/` (or
  `Images/`) + `dataset_flickr30k.json`.
Choice rules (each one stated in the report's sources):
- split: Karpathy json > the three split files > a generated split (split_sources.py);
- captions: the Karpathy json when there is one (it holds the captions of its split), else
  Flickr8k.token.txt (the authors' release, which the split files belong to), else captions.txt;
  the lemmatised Flickr8k.lemma.token.txt is never used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tasks.retrieval.caption_files import (
    KAGGLE_CAPTIONS_FILE,
    LEMMA_CAPTIONS_FILE,
    TOKEN_CAPTIONS_FILE,
)
from tasks.retrieval.karpathy_json import KARPATHY_FILES
from tasks.retrieval.split_sources import SPLIT_FILES

# In order of preference when several exist.
IMAGE_FOLDERS = ("Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "flickr30k-images")
ORIGINAL_ZIP_FOLDERS = ("Flicker8k_Dataset", "Flickr8k_Dataset")
FLICKR30K_FOLDER = "flickr30k-images"
TEXT_FOLDER = "Flickr8k_text"
JSON_OF_FOLDER = {
    FLICKR30K_FOLDER: "dataset_flickr30k.json",
    **{folder: "dataset_flickr8k.json" for folder in ORIGINAL_ZIP_FOLDERS},
}


@dataclass
class FlickrLayout:
    """The parts of a Flickr dataset found under data_dir (None: not there).

    split_files: split -> path for the published split files, None when none of them exists.
    notes: one line per choice between files, for the report's sources.
    """

    data_dir: Path
    images_dir: Path | None = None
    karpathy_json: Path | None = None
    caption_file: Path | None = None
    split_files: dict[str, Path | None] | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def relative(self, path: Path) -> str:
        """A path as the user sees it under data_dir."""
        try:
            return str(path.relative_to(self.data_dir))
        except ValueError:
            return str(path)

    @property
    def dataset(self) -> str:
        if self.karpathy_json is not None:
            return KARPATHY_FILES[self.karpathy_json.name]
        if self.images_dir is not None and self.images_dir.name == FLICKR30K_FOLDER:
            return "Flickr30k"
        return "Flickr8k"

    @property
    def name(self) -> str:
        """The layout in the words a user knows it by."""
        images = f"{self.images_dir.name}/" if self.images_dir else "no image folder"
        if self.karpathy_json is not None:
            return f"{self.dataset}, Karpathy split ({images} + {self.relative(self.karpathy_json)})"
        if (self.images_dir is not None and self.images_dir.name in ORIGINAL_ZIP_FOLDERS) or (
            self.data_dir / TEXT_FOLDER
        ).is_dir():
            return f"{self.dataset}, original zips ({images} + {TEXT_FOLDER}/)"
        caption = self.caption_file.name if self.caption_file else "no caption file"
        if self.split_files is None and caption == KAGGLE_CAPTIONS_FILE:
            return f"{self.dataset}, Kaggle download ({images} + {caption})"
        if self.split_files is not None:
            return f"{self.dataset}, {images} + split files + {caption}"
        return f"{self.dataset}, {images} + {caption}"


def text_file(data_dir: Path, name: str) -> Path | None:
    """data_dir/name, else data_dir/Flickr8k_text/name, else None."""
    for folder in (data_dir, data_dir / TEXT_FOLDER):
        if (folder / name).is_file():
            return folder / name
    return None


def choose_karpathy_json(layout: FlickrLayout) -> None:
    found = [path for path in (text_file(layout.data_dir, n) for n in KARPATHY_FILES) if path]
    if len(found) == 1:
        layout.karpathy_json = found[0]
    elif len(found) > 1:
        # Both jsons: the image folder says which dataset this is; plain Images/ cannot.
        folder = layout.images_dir.name if layout.images_dir else ""
        wanted = JSON_OF_FOLDER.get(folder)
        if wanted is None:
            layout.problems.append(
                f"{layout.data_dir}: holds both dataset_flickr8k.json and dataset_flickr30k.json; "
                "keep the one that belongs to the images"
            )
            return
        layout.karpathy_json = next(path for path in found if path.name == wanted)
        layout.notes.append(f"{wanted} chosen for {layout.images_dir.name}/; the other json not used")


def find_layout(data_dir: Path) -> FlickrLayout:
    """Locate the images, the split source and the caption file under data_dir (nothing parsed).

    Missing parts become problems; choices between files become notes.
    """
    layout = FlickrLayout(data_dir=data_dir)
    image_folders = [data_dir / name for name in IMAGE_FOLDERS if (data_dir / name).is_dir()]
    if image_folders:
        layout.images_dir = image_folders[0]
        if len(image_folders) > 1:
            others = ", ".join(f"{path.name}/" for path in image_folders[1:])
            layout.notes.append(f"images: {image_folders[0].name}/ used; {others} not used")
    else:
        layout.problems.append(
            f"{data_dir}: no image folder; unpack the images as Images/ (Kaggle), "
            f"Flicker8k_Dataset/ (Flickr8k_Dataset.zip) or flickr30k-images/ (Flickr30k)"
        )
    choose_karpathy_json(layout)

    token, kaggle = text_file(data_dir, TOKEN_CAPTIONS_FILE), text_file(data_dir, KAGGLE_CAPTIONS_FILE)
    caption_files = [path for path in (token, kaggle) if path]
    if layout.karpathy_json is None:
        layout.caption_file = caption_files[0] if caption_files else None
        if layout.caption_file is None:
            layout.problems.append(
                f"{data_dir}: no captions; add {TOKEN_CAPTIONS_FILE} (Flickr8k_text.zip), "
                f"{KAGGLE_CAPTIONS_FILE} (Kaggle) or dataset_flickr8k.json (Karpathy)"
            )
    split_paths = {split: text_file(data_dir, name) for split, name in SPLIT_FILES.items()}
    if any(split_paths.values()):
        layout.split_files = split_paths

    unused = caption_files[1:] if layout.karpathy_json is None else caption_files
    if layout.karpathy_json is not None and layout.split_files is not None:
        unused += [path for path in layout.split_files.values() if path]
    lemma = text_file(data_dir, LEMMA_CAPTIONS_FILE)
    unused += [lemma] if lemma else []
    if unused:
        names = ", ".join(layout.relative(path) for path in unused)
        layout.notes.append(f"not used: {names}")
    return layout
