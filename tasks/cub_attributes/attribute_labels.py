"""CUB's `attributes/image_attribute_labels.txt`, parsed fast and once.

Lines are `<image_id> <attribute_id> <is_present> <certainty_id> <time>` (3,677,856 of them in
CUB-200-2011: 11,788 images x 312 attributes). The official file has a few lines with extra
fields; only the first 4 fields of any line are read. pyarrow's csv reader parses the file in
C++ on all cores; lines whose field count is not 5 are handed back by pyarrow and read here.
A file pyarrow cannot convert (a non-numeric field) is read again line by line to name every
bad line (as is a file with a line of fewer than 4 fields: the threaded parse does not know
line numbers). A clean parse is cached (tasks/common/file_cache.py), so each trial and each
`orchestrate data --check` after the first loads arrays instead of parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from tasks.common.file_cache import cache_path, load_cached, source_stamp, store_cached

COLUMNS = ("image_id", "attribute_id", "is_present", "certainty_id")
CACHE_NAMESPACE = "cub_attributes"
CACHE_FORMAT = "image_attribute_labels v1: columns image_id, attribute_id, is_present, certainty_id"
MAX_LISTED_LINES = 200  # bad lines named one by one per file; the rest are counted
LINE_FORMAT = "'<image_id> <attribute_id> <is_present> <certainty_id> <time>'"
# CUB certainty ids: 1 not visible, 2 guessing, 3 probably, 4 definitely.
CERTAINTY_IDS = (1, 2, 3, 4)
NOT_VISIBLE = 1
EXAMPLES = 3  # example lines named per kind of bad line


@dataclass
class AttributeLabelLines:
    """The file's lines as columns (one entry per line, file order apart from odd-width lines).

    problems: one line each (file:line where known); from_cache: the arrays came from the cache.
    """

    image_id: np.ndarray
    attribute_id: np.ndarray
    is_present: np.ndarray
    certainty_id: np.ndarray
    problems: list[str] = field(default_factory=list)
    from_cache: bool = False
    cache_file: Path | None = None  # where the parse is cached (None: not cached)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in COLUMNS}


def first_four_integers(text: str) -> list[int] | None:
    """The first 4 whitespace-separated fields as ints, None if there are fewer or one is not."""
    fields = text.split()[:4]
    if len(fields) < 4:
        return None
    try:
        return [int(value) for value in fields]
    except ValueError:
        return None


def as_lines(values: list[list[int]], problems: list[str]) -> AttributeLabelLines:
    """Columns of int64 (wide enough for any value a bad line holds; checked later)."""
    columns = np.asarray(values, dtype=np.int64).reshape(-1, 4).T
    return AttributeLabelLines(*columns, problems=problems)


def fits(numbers: list[int], dtypes: list[np.dtype]) -> bool:
    return all(np.iinfo(dtype).min <= value <= np.iinfo(dtype).max for value, dtype in zip(numbers, dtypes))


def bad_line(path: Path, line_number: int | None, text: str) -> str:
    where = f"{path}:{line_number}" if line_number is not None else f"{path}: line {text.strip()!r}"
    return f"{where}: expected {LINE_FORMAT}; fix or delete this line"


def parse_line_by_line(path: Path) -> AttributeLabelLines:
    """The slow, thorough parse: every malformed line named (up to MAX_LISTED_LINES, then counted)."""
    values: list[list[int]] = []
    problems: list[str] = []
    unlisted = 0
    with path.open(encoding="utf-8", errors="replace") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            numbers = first_four_integers(line)
            if numbers is not None:
                values.append(numbers)
            elif len(problems) < MAX_LISTED_LINES:
                problems.append(bad_line(path, line_number, line))
            else:
                unlisted += 1
    if unlisted:
        problems.append(f"{path}: {unlisted} more malformed lines like the ones above")
    return as_lines(values, problems)


def parse_fast(path: Path) -> AttributeLabelLines:
    """pyarrow's multi-threaded csv parse; odd-width lines are read from their text.

    Raises pyarrow.ArrowInvalid when a field does not convert (the caller falls back).
    """
    odd_rows: list[tuple[int | None, str]] = []

    def keep_odd_row(row) -> str:
        odd_rows.append((row.number, row.text))
        return "skip"

    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=[*COLUMNS, "time"]),
        parse_options=pa_csv.ParseOptions(delimiter=" ", quote_char=False, invalid_row_handler=keep_odd_row),
        convert_options=pa_csv.ConvertOptions(
            include_columns=list(COLUMNS),
            column_types={"image_id": pa.int32(), "attribute_id": pa.int32(),
                          "is_present": pa.int8(), "certainty_id": pa.int8()},
        ),
    )
    parsed = [table.column(name).to_numpy() for name in COLUMNS]
    dtypes = [column.dtype for column in parsed]
    extra: list[list[int]] = []
    problems: list[str] = []
    for line_number, text in odd_rows:
        numbers = first_four_integers(text)
        if numbers is None or not fits(numbers, dtypes):
            problems.append(bad_line(path, line_number, text))
        else:
            extra.append(numbers)
    if extra:
        tail = np.asarray(extra, dtype=np.int64).T
        parsed = [np.concatenate([column, values.astype(column.dtype)]) for column, values in zip(parsed, tail)]
    return AttributeLabelLines(*parsed, problems=problems)


def read_attribute_label_lines(path: Path, use_cache: bool = True) -> AttributeLabelLines:
    """The file's (image, attribute, is_present, certainty) lines, from the cache when it is
    current, else parsed (and cached when every line parsed)."""
    if use_cache:
        cached = load_cached(path, CACHE_NAMESPACE, CACHE_FORMAT)
        if cached is not None and set(cached) == set(COLUMNS):
            return AttributeLabelLines(
                **cached, from_cache=True, cache_file=cache_path(path, CACHE_NAMESPACE)
            )
    stamp = source_stamp(path)
    try:
        lines = parse_fast(path)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        lines = None
    if lines is None or lines.problems:  # read again to name every bad line by its number
        lines = parse_line_by_line(path)
    if use_cache and not lines.problems and len(lines.image_id):
        lines.cache_file = store_cached(path, CACHE_NAMESPACE, CACHE_FORMAT, lines.arrays(), stamp)
    return lines



def examples(image_id: np.ndarray, attribute_id: np.ndarray, bad: np.ndarray) -> str:
    where = np.flatnonzero(bad)[:EXAMPLES]
    return ", ".join(f"image {image_id[i]} attribute {attribute_id[i]}" for i in where)


def rows_of(image_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted id in the sorted `image_ids`, -1 for ids not there."""
    if len(image_ids) and 0 <= image_ids[0] and image_ids[-1] <= 16 * len(image_ids) + 1024:
        # CUB's ids are 1..N: a lookup table is one pass, much faster than a binary search.
        lookup = np.full(int(image_ids[-1]) + 2, -1, dtype=np.int64)
        lookup[image_ids] = np.arange(len(image_ids))
        return lookup[np.clip(wanted, -1, len(lookup) - 1)]
    rows = np.searchsorted(image_ids, wanted)
    inside = rows < len(image_ids)
    found = inside & (image_ids[np.minimum(rows, len(image_ids) - 1)] == wanted)
    return np.where(found, rows, -1)


def label_matrices(
    lines: AttributeLabelLines, path: Path, image_ids: np.ndarray, num_attributes: int | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(is_present (N, A) uint8, certainty (N, A) uint8, problems) with rows in `image_ids` order.

    image_ids: the sorted ids of images.txt; num_attributes: A from the names file, or None to
    take the largest attribute id. Pairs without a line stay "not visible, absent". Each kind of
    bad line (unknown image id, attribute id out of range, is_present not 0/1, certainty not
    1..4, an (image, attribute) pair on two lines) and images without any line is one problem
    line with its count and first examples.
    """
    image_id, attribute_id = lines.image_id, lines.attribute_id
    problems: list[str] = []
    if not len(image_id):
        return np.zeros((len(image_ids), 0), np.uint8), np.zeros((len(image_ids), 0), np.uint8), [
            f"{path}: holds no line; it must have one line per (image, attribute)"
        ]
    count = int(attribute_id.max()) if num_attributes is None else num_attributes
    rows = rows_of(image_ids, image_id)
    known_image = rows >= 0
    checks = [
        (~known_image, "name image ids not in images.txt", "the files must list the same images"),
        ((attribute_id < 1) | (attribute_id > count), f"have an attribute id outside 1..{count}",
         "fix those lines (or the attribute names file)"),
        ((lines.is_present < 0) | (lines.is_present > 1), "have is_present not 0 or 1", "fix those lines"),
        ((lines.certainty_id < min(CERTAINTY_IDS)) | (lines.certainty_id > max(CERTAINTY_IDS)),
         "have a certainty id not in 1..4", "fix those lines"),
    ]
    valid = np.ones(len(image_id), dtype=bool)
    for bad, what, fix in checks:
        if bad.any():
            problems.append(f"{path}: {int(bad.sum())} line(s) {what} ({examples(image_id, attribute_id, bad)}); {fix}")
        valid &= ~bad
    rows, attributes = rows[valid], attribute_id[valid].astype(np.int64) - 1
    cells = rows * count + attributes
    repeated = np.flatnonzero(np.bincount(cells, minlength=len(image_ids) * count) > 1)
    if len(repeated):
        problems.append(
            f"{path}: {len(repeated)} (image, attribute) pair(s) on more than one line (image "
            f"{image_ids[repeated[0] // count]} attribute {repeated[0] % count + 1}); keep one line per pair"
        )
    covered = np.zeros(len(image_ids), dtype=bool)
    covered[rows] = True
    if not covered.all():
        missing = image_ids[~covered]
        problems.append(
            f"{path}: no line for {len(missing)} image(s) of images.txt (ids "
            f"{', '.join(map(str, missing[:EXAMPLES]))}); add their attribute lines"
        )
    present = np.zeros((len(image_ids), count), dtype=np.uint8)
    certainty = np.full((len(image_ids), count), NOT_VISIBLE, dtype=np.uint8)
    present.reshape(-1)[cells] = lines.is_present[valid]
    certainty.reshape(-1)[cells] = lines.certainty_id[valid]
    return present, certainty, problems
