"""Where the CUB-200-2011 files are under the directory a user points at.

`CUB_200_2011.tgz` unpacks to:
    attributes.txt                 the 312 attribute names (beside the dataset folder, not in it)
    CUB_200_2011/
        images.txt, train_test_split.txt, image_class_labels.txt, classes.txt, README, ...
        attributes/image_attribute_labels.txt, attributes/certainties.txt, ...
        images/<class>/<file>.jpg
A user may point at the unpacked tarball's root or at CUB_200_2011/ itself; both are read, and
the report says which. Attribute names are taken from the first of
CUB_200_2011/attributes/attributes.txt (where CUB's README places it),
CUB_200_2011/attributes.txt and the tarball root's attributes.txt (looked for only when the
dataset folder is called CUB_200_2011, so an unrelated file beside another folder is not read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DATASET_FOLDER = "CUB_200_2011"
IMAGES_FILE = "images.txt"
NAMES_FILE = "attributes.txt"


@dataclass
class CubLayout:
    """root: the folder holding images.txt (data_dir or data_dir/CUB_200_2011); names_file: the
    attribute names file found, or None; sources: what was found where, for the report."""

    data_dir: Path
    root: Path
    names_file: Path | None = None
    sources: list[str] = field(default_factory=list)

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.data_dir))
        except ValueError:
            return str(path)

    @property
    def name(self) -> str:
        if self.root != self.data_dir:
            return f"CUB-200-2011, unpacked tarball ({DATASET_FOLDER}/ one level down)"
        return "CUB-200-2011 (the dataset folder itself)"


def find_layout(data_dir: Path) -> CubLayout:
    """Locate the dataset folder and the attribute names under data_dir (nothing parsed)."""
    nested = data_dir / DATASET_FOLDER
    root = nested if not (data_dir / IMAGES_FILE).is_file() and nested.is_dir() else data_dir
    layout = CubLayout(data_dir=data_dir, root=root)
    if root != data_dir:
        layout.sources.append(
            f"dataset: {DATASET_FOLDER}/ found one level down in {data_dir} (the unpacked tarball's root)"
        )
    candidates = [root / "attributes" / NAMES_FILE, root / NAMES_FILE]
    if root.name == DATASET_FOLDER:  # the tarball puts the names beside its dataset folder
        candidates.append(root.parent / NAMES_FILE)
    layout.names_file = next((path for path in candidates if path.is_file()), None)
    if layout.names_file is not None:
        layout.sources.append(f"attribute names: {layout.relative(layout.names_file)}")
    else:
        layout.sources.append(
            f"attribute names: no {NAMES_FILE} (looked in attributes/, {root.name}/ and beside it); "
            "attributes named attribute_<id>"
        )
    return layout
