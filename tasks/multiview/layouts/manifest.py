"""The generic route: a manifest of view pairs the user wrote, used as written.

Layout under the root:
    manifest.csv        header `pair_id,view_a,view_b,pair_label,split[,object_a,object_b]`
      or manifest.parquet   the same columns (read with pyarrow; manifest.csv wins if both)
    <image files>       png/jpg, at the paths the manifest names (relative to the root)
pair_label is 1 when both views show the same object, 0 when they show different objects;
split is train, val or test. The optional object_a/object_b columns name the object each view
shows (any string, e.g. `chair_0001`); with them no object may be in two splits, a positive's
two objects must be one and a negative's two different. Without them only shared image files
can be found. Training uses a split's positive pairs; verification metrics use its positive and
negative pairs, so val and test need both kinds, and train at least 2 positives (one positive
has no in-batch negative).
"""

from __future__ import annotations

import csv
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from tasks.base import DataError
from tasks.common.data_problems import ProblemList
from tasks.common.image_headers import first_line, unreadable_image_reason
from tasks.multiview.objects import SPLITS

LAYOUT = "pair manifest (manifest.csv or manifest.parquet: pair_id, view_a, view_b, pair_label, split)"
MANIFEST_CSV = "manifest.csv"
MANIFEST_PARQUET = "manifest.parquet"
COLUMNS = ("pair_id", "view_a", "view_b", "pair_label", "split")
OBJECT_COLUMNS = ("object_a", "object_b")
MIN_TRAIN_POSITIVES = 2


@dataclass(frozen=True)
class PairRow:
    """One manifest row, validated. `where` names it in messages, e.g. `.../manifest.csv:7`."""

    pair_id: str
    view_a: str
    view_b: str
    pair_label: int
    split: str
    where: str
    object_a: Optional[str] = None
    object_b: Optional[str] = None


def manifest_path(root: Path) -> Path | None:
    """manifest.csv, else manifest.parquet, else None."""
    for name in (MANIFEST_CSV, MANIFEST_PARQUET):
        if (root / name).is_file():
            return root / name
    return None


def looks_like(root: Path) -> bool:
    return manifest_path(root) is not None


def _check_columns(path: Path, columns: list[str]) -> bool:
    """True when the object columns are present; DataError when a required one is missing."""
    missing = [column for column in COLUMNS if column not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must name {','.join(COLUMNS)}"
        )
    present = [column for column in OBJECT_COLUMNS if column in columns]
    if len(present) == 1:
        absent = next(column for column in OBJECT_COLUMNS if column not in present)
        raise DataError(f"{path}: has {present[0]} but no {absent}; name both objects of a pair or neither")
    return bool(present)


def _csv_records(path: Path) -> tuple[bool, Iterator[tuple[str, dict[str, Any]]]]:
    """(object columns present, (where, raw row) of every non-blank csv row)."""
    file = path.open(newline="", encoding="utf-8")
    reader = csv.DictReader(file)
    header = [name.strip() for name in reader.fieldnames or []]
    try:
        has_objects = _check_columns(path, header)
    except DataError:
        file.close()
        raise
    reader.fieldnames = header

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        with file:
            for row in reader:
                if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                    continue
                yield f"{path}:{reader.line_num}", row

    return has_objects, rows()


def _parquet_records(path: Path) -> tuple[bool, Iterator[tuple[str, dict[str, Any]]]]:
    import pyarrow.parquet as parquet

    try:
        table = parquet.read_table(path)
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise DataError(
            f"{path}: unreadable parquet file ({first_line(error)}); rewrite it or use {MANIFEST_CSV}"
        ) from None
    has_objects = _check_columns(path, table.column_names)
    columns = list(COLUMNS) + (list(OBJECT_COLUMNS) if has_objects else [])
    rows = table.select(columns).to_pylist()
    return has_objects, ((f"{path} row {index}", row) for index, row in enumerate(rows, start=1))


def _pair_label(value: Any, where: str) -> int:
    """0 or 1 from an int, bool, integral float or the strings "0"/"1"; DataError otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    raise DataError(f"{where}: pair_label {value!r} is not 0 or 1; fix the row or delete it")


def _text(row: dict[str, Any], column: str, where: str) -> str:
    value = row.get(column)
    text = "" if value is None else str(value).strip()
    if not text:
        raise DataError(f"{where}: {column} is empty; fill it in or delete the row")
    return text


def _row(raw: dict[str, Any], where: str, has_objects: bool) -> PairRow:
    split = _text(raw, "split", where)
    if split not in SPLITS:
        raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}; fix the row")
    row = PairRow(
        pair_id=_text(raw, "pair_id", where),
        view_a=_text(raw, "view_a", where),
        view_b=_text(raw, "view_b", where),
        pair_label=_pair_label(raw.get("pair_label"), where),
        split=split,
        where=where,
        object_a=_text(raw, "object_a", where) if has_objects else None,
        object_b=_text(raw, "object_b", where) if has_objects else None,
    )
    if has_objects and (row.object_a == row.object_b) != (row.pair_label == 1):
        if row.pair_label:
            kind = "a positive (pair_label 1) names two objects"
        else:
            kind = "a negative (pair_label 0) names one object twice"
        raise DataError(f"{where}: {kind} ({row.object_a}, {row.object_b}); fix pair_label or the objects")
    return row


def read_manifest(root: Path, problems: ProblemList) -> tuple[list[PairRow], bool]:
    """(every valid row, whether the object columns are present); each bad row is a problem.

    Checks no image file; see `check_image_files`.
    """
    path = manifest_path(root)
    if path is None:
        problems.add(f"{root}: no {MANIFEST_CSV} or {MANIFEST_PARQUET}")
        return [], False
    try:
        has_objects, records = (_csv_records if path.suffix == ".csv" else _parquet_records)(path)
    except DataError as error:
        problems.add(str(error))
        return [], False
    rows: list[PairRow] = []
    seen: dict[str, str] = {}
    for where, raw in records:
        with problems.collecting():
            row = _row(raw, where, has_objects)
            if row.pair_id in seen:
                raise DataError(
                    f"{where}: pair_id {row.pair_id!r} already used at {seen[row.pair_id]}; "
                    "make pair ids unique"
                )
            seen[row.pair_id] = where
            rows.append(row)
    if not rows and not problems:
        problems.add(f"{path}: the manifest lists no pairs; add one row per view pair")
    return rows, has_objects


def check_split_composition(rows: list[PairRow], manifest: Path, problems: ProblemList) -> None:
    """Train has >= 2 positive pairs; val and test each have a positive and a negative pair."""
    for split in SPLITS:
        labels = [row.pair_label for row in rows if row.split == split]
        positives, negatives = labels.count(1), labels.count(0)
        if split == "train" and positives < MIN_TRAIN_POSITIVES:
            problems.add(
                f"{manifest}: split train has {positives} positive pair(s), needs at least "
                f"{MIN_TRAIN_POSITIVES} for in-batch contrast; add pairs with pair_label 1"
            )
        for kind, count, label in (("positive", positives, 1), ("negative", negatives, 0)):
            if split != "train" and count == 0:
                problems.add(
                    f"{manifest}: split {split} has no {kind} (pair_label {label}) pair, so "
                    f"verification metrics are undefined; add {kind} rows with split {split}"
                )


def check_image_files(
    rows: list[PairRow], root: Path, manifest: Path, problems: ProblemList, read_headers: bool
) -> None:
    """Every image a row names exists (and, with read_headers, opens: header only)."""
    checked: set[str] = set()
    for row in rows:
        for column, relative in (("view_a", row.view_a), ("view_b", row.view_b)):
            if relative in checked:
                continue
            checked.add(relative)
            path = root / relative
            if not path.is_file():
                problems.add(
                    f"{row.where}: {column} image {path} does not exist; add the file or fix the path"
                )
                continue
            reason = unreadable_image_reason(path) if read_headers else None
            if reason is not None:
                problems.add(
                    f"{path}: unreadable image ({reason}); replace it or remove the rows naming "
                    f"it from {manifest.name}"
                )
