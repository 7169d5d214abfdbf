"""Which layout a dataset directory is in: one reader is picked, in a fixed order of precedence.

A manifest wins (the user wrote it on purpose, even over an image tree it points into); then
CO3D (its per-category set lists and frame annotations are unmistakable, while its
<category>/<sequence>/images/ tree would also pass for MVImgNet); then MVCNN renders; then
MVImgNet. A dataset unpacked into a single folder (`modelnet40_images_new_12x/`) is found one
level down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tasks.multiview.layouts import co3d, manifest, mvcnn, mvimgnet
from tasks.multiview.layouts.listing import subdirectories

READERS: tuple[ModuleType, ...] = (manifest, co3d, mvcnn, mvimgnet)
EXPECTED = (
    f"{manifest.MANIFEST_CSV} (pair_id, view_a, view_b, pair_label, split), "
    "<class>/<train|test>/<class>_<NNNN>.obj.shaded_v<VVV>.png (ModelNet40 MVCNN), "
    "<category>/<sequence>/images/frameNNNNNN.jpg with <category>/set_lists/ (CO3D v2) or "
    "<class>/<instance>/images/*.jpg (MVImgNet)"
)


@dataclass(frozen=True)
class Detected:
    """The layout module picked, the root its paths are relative to, and a note when the root
    is not the directory the user gave."""

    reader: ModuleType
    root: Path
    note: str | None = None


def detect_layout(data_dir: Path) -> Detected | None:
    """The first reader (in READERS order) that recognises data_dir, or its only subfolder."""
    for reader in READERS:
        if reader.looks_like(data_dir):
            return Detected(reader, data_dir)
    children = subdirectories(data_dir)
    if len(children) == 1:
        for reader in READERS:
            if reader.looks_like(children[0]):
                return Detected(reader, children[0], f"the dataset is one level down, in {children[0].name}/")
    return None
