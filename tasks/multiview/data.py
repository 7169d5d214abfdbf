"""The view-pair manifest layout: reading and checking the manifest, decoding a split's images.

Layout under data_dir:
    manifest.csv                  header `pair_id,view_a,view_b,pair_label,split`, one row per pair
      or manifest.parquet         the same columns (read with pyarrow; manifest.csv wins if both)
    <image files>                 png/jpg, at the paths the manifest names (relative to data_dir)
pair_label is 1 when both views show the same object, 0 when they show different objects; split
is train, val or test. Training uses a split's positive pairs; verification metrics use its
positive and negative pairs, so val and test need both kinds, and train needs at least 2
positives (one positive has no in-batch negative). Any problem raises DataError with one line
naming the file (and row) and the fix.
"""

from __future__ import annotations

import csv
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from PIL import Image

from tasks.base import DataError
from tasks.common.image_loading import load_image_uint8

MANIFEST_CSV = "manifest.csv"
MANIFEST_PARQUET = "manifest.parquet"
COLUMNS = ("pair_id", "view_a", "view_b", "pair_label", "split")
SPLITS = ("train", "val", "test")
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


@dataclass
class ViewPairSplit:
    """One split as loaded: each distinct image decoded once, pairs as indices into them.

    images: (N, 3, S, S) uint8, image i read from image_paths[i]; view_a, view_b: (P,) long
    indices into images; pair_labels: (P,) long in {0, 1}; pair_ids: P strings, manifest order.
    """

    image_paths: list[str]
    images: torch.Tensor
    view_a: torch.Tensor
    view_b: torch.Tensor
    pair_labels: torch.Tensor
    pair_ids: list[str]

    @property
    def positives(self) -> torch.Tensor:
        """(P,) bool: which pairs show the same object."""
        return self.pair_labels == 1


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def manifest_path(data_dir: Path) -> Path:
    """manifest.csv, else manifest.parquet; DataError when neither exists."""
    for name in (MANIFEST_CSV, MANIFEST_PARQUET):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataError(
        f"{data_dir}: no manifest; add {MANIFEST_CSV} (or {MANIFEST_PARQUET}) with columns "
        f"{','.join(COLUMNS)}"
    )


def _missing_columns_error(path: Path, columns: list[str]) -> DataError:
    missing = [column for column in COLUMNS if column not in columns]
    return DataError(
        f"{path}: missing column(s) {', '.join(missing)}; the header must name {','.join(COLUMNS)}"
    )


def _csv_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, raw row) of every non-blank csv row; the header must hold every column."""
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        header = [name.strip() for name in reader.fieldnames or []]
        if not set(COLUMNS) <= set(header):
            raise _missing_columns_error(path, header)
        reader.fieldnames = header
        for row in reader:
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            yield f"{path}:{reader.line_num}", row


def _parquet_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as parquet

    try:
        table = parquet.read_table(path)
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise DataError(
            f"{path}: unreadable parquet file ({first_line(error)}); rewrite it or use {MANIFEST_CSV}"
        ) from None
    if not set(COLUMNS) <= set(table.column_names):
        raise _missing_columns_error(path, table.column_names)
    for index, row in enumerate(table.select(list(COLUMNS)).to_pylist(), start=1):
        yield f"{path} row {index}", row


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


def read_manifest(data_dir: Path) -> list[PairRow]:
    """Every manifest row, validated (labels in {0, 1}, known split, unique pair_id, no blanks).

    Checks no image file; see `check_data`.
    """
    data_dir = Path(data_dir)
    path = manifest_path(data_dir)
    records = _csv_records(path) if path.suffix == ".csv" else _parquet_records(path)
    rows: list[PairRow] = []
    seen: dict[str, str] = {}
    for where, raw in records:
        pair_id = _text(raw, "pair_id", where)
        if pair_id in seen:
            raise DataError(
                f"{where}: pair_id {pair_id!r} already used at {seen[pair_id]}; make pair ids unique"
            )
        seen[pair_id] = where
        split = _text(raw, "split", where)
        if split not in SPLITS:
            raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}; fix the row")
        rows.append(
            PairRow(
                pair_id=pair_id,
                view_a=_text(raw, "view_a", where),
                view_b=_text(raw, "view_b", where),
                pair_label=_pair_label(raw.get("pair_label"), where),
                split=split,
                where=where,
            )
        )
    if not rows:
        raise DataError(f"{path}: the manifest lists no pairs; add one row per view pair")
    return rows


def check_split_composition(rows: list[PairRow], manifest: Path) -> None:
    """Train has >= 2 positive pairs; val and test each have a positive and a negative pair."""
    for split in SPLITS:
        labels = [row.pair_label for row in rows if row.split == split]
        positives, negatives = labels.count(1), labels.count(0)
        if split == "train" and positives < MIN_TRAIN_POSITIVES:
            raise DataError(
                f"{manifest}: split train has {positives} positive pair(s), needs at least "
                f"{MIN_TRAIN_POSITIVES} for in-batch contrast; add pairs with pair_label 1"
            )
        if split != "train" and (positives == 0 or negatives == 0):
            kind = "positive (pair_label 1)" if positives == 0 else "negative (pair_label 0)"
            raise DataError(
                f"{manifest}: split {split} has no {kind} pair, so verification metrics are "
                f"undefined; add {kind} rows with split {split}"
            )


def check_image_files(rows: list[PairRow], data_dir: Path, manifest: Path) -> None:
    """Every image a row names exists and opens as an image (header only, no pixels decoded)."""
    checked: set[str] = set()
    for row in rows:
        for column, relative in (("view_a", row.view_a), ("view_b", row.view_b)):
            if relative in checked:
                continue
            path = data_dir / relative
            if not path.is_file():
                raise DataError(
                    f"{row.where}: {column} image {path} does not exist; add the file or fix the path"
                )
            try:
                with Image.open(path):
                    pass
            except Exception as error:  # PIL raises several types for unreadable files
                raise DataError(
                    f"{path}: unreadable image ({first_line(error)}); replace it or remove the rows "
                    f"naming it from {manifest.name}"
                ) from None
            checked.add(relative)


def check_data(data_dir: Path) -> None:
    """Cheap checks of the whole layout: manifest rows, split composition, image headers.

    Raises DataError (one line) on the first problem; decodes no pixels.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        raise DataError(
            f"{data_dir}: missing or empty; put a view-pair dataset (manifest + images) there or "
            "write the demo with: orchestrate data --task multiview --out DIR"
        )
    rows = read_manifest(data_dir)
    manifest = manifest_path(data_dir)
    check_split_composition(rows, manifest)
    check_image_files(rows, data_dir, manifest)


def load_split(data_dir: Path, rows: list[PairRow], split: str, image_size: int) -> ViewPairSplit:
    """Decode the images of one split's pairs once each into uint8 tensors.

    rows: from `read_manifest`. Assumes `check_data` passed; a file that fails to decode still
    raises DataError naming it.
    """
    data_dir = Path(data_dir)
    split_rows = [row for row in rows if row.split == split]
    index_of: dict[str, int] = {}
    for row in split_rows:
        index_of.setdefault(row.view_a, len(index_of))
        index_of.setdefault(row.view_b, len(index_of))
    images = torch.empty((len(index_of), 3, image_size, image_size), dtype=torch.uint8)
    for relative, index in index_of.items():
        path = data_dir / relative
        try:
            images[index] = load_image_uint8(path, image_size)
        except Exception as error:  # PIL raises several types for corrupt files
            raise DataError(
                f"{path}: cannot decode image ({first_line(error)}); replace it or remove the rows "
                "naming it from the manifest"
            ) from None
    return ViewPairSplit(
        image_paths=list(index_of),
        images=images,
        view_a=torch.tensor([index_of[row.view_a] for row in split_rows], dtype=torch.long),
        view_b=torch.tensor([index_of[row.view_b] for row in split_rows], dtype=torch.long),
        pair_labels=torch.tensor([row.pair_label for row in split_rows], dtype=torch.long),
        pair_ids=[row.pair_id for row in split_rows],
    )
