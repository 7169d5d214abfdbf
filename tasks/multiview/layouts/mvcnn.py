"""ModelNet40 rendered for MVCNN (jongchyisu/mvcnn_pytorch, `modelnet40_images_new_12x`).

Layout under the root:
    <class>/train/<class>_<NNNN>.obj.shaded_v<VVV>.png
    <class>/test/<class>_<NNNN>.obj.shaded_v<VVV>.png
e.g. `airplane/train/airplane_0001.obj.shaded_v001.png`, 12 views (v001..v012) per object.
An object is `<class>_<NNNN>` (the name before `.obj`); its views are ordered by view number,
which is the order of mvcnn_pytorch's sorted glob. The dataset's own split is the train/ and
test/ folders (ModelNet40: 9843 and 2468 objects). Files in those folders not named like a
render (other files, depth renders) are left out and counted in a source line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tasks.multiview.layouts.listing import dataset_folders, file_names
from tasks.multiview.objects import LayoutScan, ViewedObject

LAYOUT = "ModelNet40 MVCNN renders (<class>/<train|test>/<class>_<NNNN>.obj.shaded_v<VVV>.png)"
OWN_SPLITS = ("train", "test")
VIEW_NAME = re.compile(r"^(?P<object>.+)\.obj\.shaded_v(?P<view>\d+)\.png$")


def looks_like(root: Path) -> bool:
    """True when some <class>/<train|test>/ folder under root holds a render named as above."""
    for class_dir in dataset_folders(root):
        for split in OWN_SPLITS:
            if any(VIEW_NAME.match(name) for name in file_names(class_dir / split)):
                return True
    return False


def read(root: Path) -> LayoutScan:
    """Every object of every class and split under root, with its views (see the module doc)."""
    scan = LayoutScan(
        layout=LAYOUT,
        root=root,
        objects={split: [] for split in OWN_SPLITS},
        split_source="the dataset's own train/ and test/ folders",
    )
    ignored: list[str] = []
    for class_dir in dataset_folders(root):
        class_name = class_dir.name
        split_dirs = [split for split in OWN_SPLITS if (class_dir / split).is_dir()]
        if not split_dirs:
            scan.problems.append(
                f"{class_dir}: no train/ or test/ folder; MVCNN renders sit in "
                f"<class>/<train|test>/; move them there or remove the folder"
            )
            continue
        for split in split_dirs:
            views: dict[str, list[tuple[int, str]]] = defaultdict(list)
            for name in file_names(class_dir / split):
                match = VIEW_NAME.match(name)
                if match is None:
                    ignored.append(f"{class_name}/{split}/{name}")
                    continue
                views[match["object"]].append((int(match["view"]), name))
            for object_name in sorted(views):
                if not object_name.startswith(f"{class_name}_"):
                    scan.problems.append(
                        f"{class_dir / split / views[object_name][0][1]}: object {object_name!r} "
                        f"is in class folder {class_name!r} but is not named {class_name}_<NNNN>; "
                        "move it to its class folder"
                    )
                    continue
                scan.objects[split].append(
                    ViewedObject(
                        key=f"{class_name}/{object_name}",
                        class_name=class_name,
                        views=tuple(f"{class_name}/{split}/{name}" for _, name in sorted(views[object_name])),
                    )
                )
    if ignored:
        scan.sources.append(
            f"left out {len(ignored)} file(s) not named <class>_<NNNN>.obj.shaded_v<VVV>.png, "
            f"e.g. {ignored[0]}"
        )
    return scan
