"""Which layout a dataset folder holds, and where its root is.

Order: a manifest (manifest.csv / manifest.parquet) in the folder wins, since a user wrote it on
purpose; else Scenario_* folders in one AnoVox layout (released or generator; both at once is
an error naming one scenario of each); else, when exactly one sub-folder holds Scenario_*
folders (the generator writes Data/Outputs/Final_Output_<timestamp>/Scenario_*, a download may
unpack into AnoVox/), that sub-folder is the root, and the report says so. Anything else: a
DataError saying which layouts are read.
"""

from __future__ import annotations

from pathlib import Path

from tasks.anomaly.layouts.anovox_generator import AnovoxGeneratorLayout
from tasks.anomaly.layouts.anovox_released import AnovoxReleasedLayout
from tasks.anomaly.layouts.anovox_scenarios import scenario_folders
from tasks.anomaly.layouts.base import Layout
from tasks.anomaly.layouts.scene_manifest import SceneManifestLayout
from tasks.base import DataError

MANIFEST = SceneManifestLayout()
ANOVOX_LAYOUTS = (AnovoxReleasedLayout(), AnovoxGeneratorLayout())
EXPECTED = (
    "expected AnoVox as released (Scenario_<id>/RGB_IMG, PCD, SEMANTIC_PCD), as its generator "
    "writes it (Scenario_<id>/RGB-CAM(...), LIDAR(...), SEMANTIC-LIDAR(...)) or a manifest.csv "
    "(scene_id,image,points,labels,split)"
)


def _anovox_layout(root: Path) -> Layout | None:
    found = [layout for layout in ANOVOX_LAYOUTS if layout.recognises(root)]
    if len(found) > 1:
        raise DataError(
            f"{root}: holds scenarios in both AnoVox layouts ({found[0].name}; {found[1].name}); "
            "keep one layout per dataset folder"
        )
    return found[0] if found else None


def detect_layout(data_dir: Path) -> tuple[Layout, Path, list[str]]:
    """(layout reader, dataset root, notes for the report); DataError when none is recognised."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        raise DataError(
            f"{data_dir}: missing or empty; put an AnoVox dataset there ({EXPECTED.removeprefix('expected ')}) "
            "or write the demo with `orchestrate data --task anomaly`"
        )
    if MANIFEST.recognises(data_dir):
        return MANIFEST, data_dir, []
    layout = _anovox_layout(data_dir)
    if layout is not None:
        return layout, data_dir, []
    if any(entry.is_dir() and entry.name.startswith("Scenario_") for entry in data_dir.iterdir()):
        raise DataError(f"{data_dir}: Scenario_* folders hold no sensor folders AnoVox writes; {EXPECTED}")
    holders = [entry for entry in sorted(data_dir.iterdir()) if entry.is_dir() and scenario_folders(entry)]
    if len(holders) == 1:
        layout = _anovox_layout(holders[0])
        if layout is not None:
            note = f"dataset root: {holders[0]} (the one sub-folder holding Scenario_* folders)"
            return layout, holders[0], [note]
    if len(holders) > 1:
        raise DataError(
            f"{data_dir}: several sub-folders hold Scenario_* folders ({', '.join(h.name for h in holders[:3])}"
            f"{', ...' if len(holders) > 3 else ''}); give one of them as the data directory"
        )
    raise DataError(f"{data_dir}: no manifest.csv, manifest.parquet or Scenario_* folders; {EXPECTED}")
