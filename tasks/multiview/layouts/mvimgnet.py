"""MVImgNet (GAP-LAB-CUHK-SZ/MVImgNet, README "Folder structure").

Layout under the root:
    <class_label>/<instance_id>/images/<NNN>.jpg
    <class_label>/<instance_id>/sparse/0/   (COLMAP cameras; not needed here)
class_label is a number (mvimgnet_category.txt maps it to a name, e.g. 36 -> chair) and an
instance is one video of one object. An object is `<class_label>/<instance_id>`, its views the
frames in images/, in frame-number order. Frames whose name holds "bg_removed" (background
removed copies some users write beside the frames) are left out. MVImgNet ships no split, so
the split is carved by instance.
"""

from __future__ import annotations

from pathlib import Path

from tasks.multiview.layouts.listing import (
    dataset_folders,
    file_names,
    is_image_name,
    natural_key,
    subdirectories,
)
from tasks.multiview.objects import UNSPLIT, LayoutScan, ViewedObject

LAYOUT = "MVImgNet (<class>/<instance>/images/*.jpg)"
DERIVED_FRAME_MARK = "bg_removed"
INSTANCES_PROBED = 3  # instances looked into per class folder when detecting the layout


def _frames(images_dir: Path) -> list[str]:
    return [
        name
        for name in file_names(images_dir)
        if is_image_name(name) and DERIVED_FRAME_MARK not in name
    ]


def looks_like(root: Path) -> bool:
    """True when some <class>/<instance>/images/ folder under root holds image files."""
    return any(
        _frames(instance / "images")
        for class_dir in dataset_folders(root)
        for instance in subdirectories(class_dir)[:INSTANCES_PROBED]
    )


def read(root: Path) -> LayoutScan:
    """Every instance of every class under root, with its frames (see the module doc)."""
    scan = LayoutScan(
        layout=LAYOUT,
        root=root,
        split_source="MVImgNet ships no split, so the instances are carved",
    )
    objects: list[ViewedObject] = []
    for class_dir in dataset_folders(root):
        instances = subdirectories(class_dir)
        if not instances:
            continue  # a stray folder beside the classes (e.g. a download's metadata)
        for instance in instances:
            frames = _frames(instance / "images")
            if not frames:
                scan.problems.append(
                    f"{instance}: no images/*.jpg; unpack the instance's frames or remove the folder"
                )
                continue
            objects.append(
                ViewedObject(
                    key=f"{class_dir.name}/{instance.name}",
                    class_name=class_dir.name,
                    views=tuple(
                        f"{class_dir.name}/{instance.name}/images/{name}"
                        for name in sorted(frames, key=natural_key)
                    ),
                )
            )
    scan.objects[UNSPLIT] = objects
    return scan
