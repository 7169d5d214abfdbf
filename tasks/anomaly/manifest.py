"""The scene manifest: one row per scene, as `manifest.csv` or `manifest.parquet` in data_dir.

Columns (any order, extra columns ignored): scene_id, image, points, labels, split.
image / points / labels are paths relative to data_dir (absolute paths are used as given); split
is train, val or test. `manifest.csv` is read when present, else `manifest.parquet` (pyarrow).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tasks.anomaly.layouts.base import SPLITS
from tasks.base import DataError

CSV_MANIFEST = "manifest.csv"
PARQUET_MANIFEST = "manifest.parquet"
COLUMNS = ("scene_id", "image", "points", "labels", "split")


@dataclass(frozen=True)
class SceneEntry:
    """One manifest row, with its paths resolved against data_dir."""

    scene_id: str
    image: Path
    points: Path
    labels: Path
    split: str


def manifest_path(data_dir: Path) -> Path:
    """manifest.csv if present, else manifest.parquet; DataError when neither exists."""
    for name in (CSV_MANIFEST, PARQUET_MANIFEST):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataError(
        f"{data_dir}: no {CSV_MANIFEST} or {PARQUET_MANIFEST}; add a manifest with columns "
        f"{','.join(COLUMNS)}"
    )


def _read_rows(path: Path) -> list[dict[str, str]]:
    """Raw rows as dicts of strings (None for a missing value)."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            rows = list(reader)
    else:
        import pyarrow.parquet as parquet

        try:
            table = parquet.read_table(path)
        except Exception as error:  # pyarrow raises its own error types for corrupt files
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(f"{path}: unreadable parquet file ({first}); rewrite it") from None
        columns = table.column_names
        rows = [
            {key: None if value is None else str(value) for key, value in row.items()}
            for row in table.to_pylist()
        ]
    missing = [column for column in COLUMNS if column not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; the manifest needs {','.join(COLUMNS)}"
        )
    return rows


def read_manifest(data_dir: Path) -> list[SceneEntry]:
    """All scenes of the manifest, in file order.

    Raises DataError for a missing manifest or column, an empty value, an unknown split, a
    repeated scene_id, or a manifest without rows.
    """
    data_dir = Path(data_dir)
    path = manifest_path(data_dir)
    entries: list[SceneEntry] = []
    seen: set[str] = set()
    for line_number, row in enumerate(_read_rows(path), start=2):
        values = {column: (row.get(column) or "").strip() for column in COLUMNS}
        where = f"{path} row {line_number}" if path.suffix == ".csv" else f"{path} row {line_number - 1}"
        for column, value in values.items():
            if not value:
                scene = values["scene_id"] or "(no scene_id)"
                raise DataError(
                    f"{where}: scene {scene} has no {column}; fill it in or remove the row"
                )
        if values["split"] not in SPLITS:
            raise DataError(
                f"{where}: scene {values['scene_id']} has split {values['split']!r}; "
                f"use one of {', '.join(SPLITS)}"
            )
        if values["scene_id"] in seen:
            raise DataError(f"{where}: scene_id {values['scene_id']} appears twice; make ids unique")
        seen.add(values["scene_id"])
        entries.append(
            SceneEntry(
                scene_id=values["scene_id"],
                image=data_dir / values["image"],
                points=data_dir / values["points"],
                labels=data_dir / values["labels"],
                split=values["split"],
            )
        )
    if not entries:
        raise DataError(f"{path}: the manifest lists no scenes; add one row per scene")
    return entries
