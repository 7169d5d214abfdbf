"""The PCD point-cloud format of PCL and Open3D: header, cheap size checks, reading and writing.

A PCD file is a text header, one keyword per line ('#' lines are comments):
    VERSION .7 | 0.7 | .5      FIELDS x y z rgb ...      SIZE 4 4 4 4 (bytes per value)
    TYPE F F F U (F float, I signed, U unsigned)          COUNT 1 1 1 1 (values per field)
    WIDTH w    HEIGHT h        VIEWPOINT tx ty tz qw qx qy qz      POINTS n      DATA kind
then the body, in one of three kinds:
    ascii              one point per line, the fields' values separated by spaces;
    binary             n packed little-endian records, fields in header order;
    binary_compressed  uint32 compressed size, uint32 uncompressed size, then an LZF stream
                       that expands to the fields one after another (all x, then all y, ...).
COUNT defaults to 1 and POINTS to WIDTH x HEIGHT (PCL's v.5 files have neither VIEWPOINT nor
always COUNT). Colours are one 4-byte field `rgb` or `rgba` holding 0x00RRGGBB (bytes B, G, R, A
in the file), typed F (Open3D, PCL) or U; `packed_colours` unpacks them.

Problems raise PcdError with one line saying what is wrong; callers add the file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from tasks.common.lzf import LzfError, lzf_decompress

DATA_KINDS = ("ascii", "binary", "binary_compressed")
NUMPY_CODES = {
    ("F", 4): "f4", ("F", 8): "f8",
    ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8",
    ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8",
}
PCD_TYPES = {code: key for key, code in NUMPY_CODES.items()}
MAX_HEADER_LINES = 64
COLOUR_FIELDS = ("rgb", "rgba")


class PcdError(ValueError):
    """The file is not a PCD point cloud this reader supports, or it is damaged; one line."""


@dataclass(frozen=True)
class PcdField:
    """One FIELDS entry: its name, bytes per value, type letter and number of values."""

    name: str
    size: int
    type: str
    count: int

    def numpy_code(self) -> str:
        return NUMPY_CODES[(self.type, self.size)]


@dataclass(frozen=True)
class PcdHeader:
    """What a PCD header says, and where its body starts (bytes from the file's start)."""

    fields: tuple[PcdField, ...]
    width: int
    height: int
    points: int
    data: str  # one of DATA_KINDS
    body_offset: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    @property
    def point_size(self) -> int:
        """Bytes of one point in a binary body."""
        return sum(field.size * field.count for field in self.fields)

    @property
    def values_per_point(self) -> int:
        return sum(field.count for field in self.fields)

    def record_dtype(self) -> np.dtype:
        """The packed little-endian record of one point; repeated names (PCL's `_` padding)
        get a numbered suffix."""
        seen: dict[str, int] = {}
        parts = []
        for field in self.fields:
            repeat = seen.get(field.name, 0)
            seen[field.name] = repeat + 1
            name = field.name if repeat == 0 else f"{field.name}_{repeat}"
            code = "<" + field.numpy_code()
            parts.append((name, code) if field.count == 1 else (name, code, (field.count,)))
        return np.dtype(parts)


def _integers(words: list[str], keyword: str) -> list[int]:
    try:
        values = [int(word) for word in words]
    except ValueError:
        raise PcdError(f"header line {keyword} {' '.join(words)!r} holds a non-integer") from None
    if any(value < 0 for value in values):
        raise PcdError(f"header line {keyword} {' '.join(words)!r} holds a negative number")
    return values


def read_pcd_header(path: Path) -> PcdHeader:
    """Parse the header of a PCD file (reads only the header's bytes)."""
    names: list[str] | None = None
    sizes: list[int] | None = None
    types: list[str] | None = None
    counts: list[int] | None = None
    numbers: dict[str, int] = {}
    with Path(path).open("rb") as file:
        for _ in range(MAX_HEADER_LINES):
            raw = file.readline()
            if not raw:
                raise PcdError("the header ends before its DATA line (file truncated or not a PCD file)")
            text = raw.decode("ascii", errors="replace").strip()
            if not text or text.startswith("#"):
                continue
            keyword, *words = text.split()
            keyword = keyword.upper()
            if keyword == "VERSION" or keyword == "VIEWPOINT":
                continue
            if keyword in ("FIELDS", "COLUMNS"):
                names = words
            elif keyword == "SIZE":
                sizes = _integers(words, keyword)
            elif keyword == "TYPE":
                types = [word.upper() for word in words]
            elif keyword == "COUNT":
                counts = _integers(words, keyword)
            elif keyword in ("WIDTH", "HEIGHT", "POINTS"):
                if len(words) != 1:
                    raise PcdError(f"header line {text!r} must hold one number")
                numbers[keyword] = _integers(words, keyword)[0]
            elif keyword == "DATA":
                data = words[0].lower() if words else ""
                if data not in DATA_KINDS:
                    raise PcdError(
                        f"unsupported DATA kind {' '.join(words)!r}; use one of {', '.join(DATA_KINDS)}"
                    )
                body_offset = file.tell()
                break
            else:
                raise PcdError(f"unknown header keyword {keyword!r} (not a PCD file?)")
        else:
            raise PcdError(f"no DATA line within {MAX_HEADER_LINES} header lines (not a PCD file?)")
    if not names:
        raise PcdError("the header has no FIELDS line")
    counts = counts if counts is not None else [1] * len(names)
    for keyword, values in (("SIZE", sizes), ("TYPE", types), ("COUNT", counts)):
        if values is None:
            raise PcdError(f"the header has no {keyword} line")
        if len(values) != len(names):
            raise PcdError(f"{keyword} lists {len(values)} entries for {len(names)} FIELDS")
    fields = []
    for name, size, kind, count in zip(names, sizes, types, counts):
        if (kind, size) not in NUMPY_CODES:
            raise PcdError(f"field {name} has unsupported TYPE {kind} with SIZE {size}")
        fields.append(PcdField(name, size, kind, count))
    if "WIDTH" not in numbers:
        raise PcdError("the header has no WIDTH line")
    width, height = numbers["WIDTH"], numbers.get("HEIGHT", 1)
    points = numbers.get("POINTS", width * height)
    if points != width * height:
        raise PcdError(f"POINTS {points} differs from WIDTH x HEIGHT = {width} x {height}")
    return PcdHeader(tuple(fields), width, height, points, data, body_offset)


def check_pcd_body(path: Path, header: PcdHeader) -> None:
    """That the body holds every point the header announces, without decoding it.

    binary: the file size; binary_compressed: the two size words and the file size; ascii: the
    number of non-empty lines (a byte count over the body, no number parsing).
    """
    size = Path(path).stat().st_size
    if header.data == "binary":
        needed = header.body_offset + header.points * header.point_size
        if size < needed:
            raise PcdError(f"truncated: {header.points} points need {needed} bytes, the file has {size}")
    elif header.data == "binary_compressed":
        compressed, uncompressed = _compressed_sizes(path, header)
        if uncompressed != header.points * header.point_size:
            raise PcdError(
                f"the compressed body expands to {uncompressed} bytes, {header.points} points of "
                f"{header.point_size} bytes need {header.points * header.point_size}"
            )
        needed = header.body_offset + 8 + compressed
        if size < needed:
            raise PcdError(f"truncated: the compressed body needs {needed} bytes, the file has {size}")
    else:
        lines = len(_ascii_lines(path, header))
        if lines < header.points:
            raise PcdError(
                f"truncated: the header announces {header.points} points, the body has {lines} lines"
            )


def _compressed_sizes(path: Path, header: PcdHeader) -> tuple[int, int]:
    with Path(path).open("rb") as file:
        file.seek(header.body_offset)
        words = file.read(8)
    if len(words) < 8:
        raise PcdError("truncated: the compressed body's size words are missing")
    compressed, uncompressed = np.frombuffer(words, dtype="<u4")
    return int(compressed), int(uncompressed)


def _ascii_lines(path: Path, header: PcdHeader) -> list[bytes]:
    with Path(path).open("rb") as file:
        file.seek(header.body_offset)
        body = file.read()
    return [line for line in body.splitlines() if line.strip()]


def read_pcd(path: Path) -> np.ndarray:
    """Every point of a PCD file as a structured array (header.record_dtype()), in file order."""
    header = read_pcd_header(path)
    check_pcd_body(path, header)
    dtype = header.record_dtype()
    if header.data == "binary":
        with Path(path).open("rb") as file:
            file.seek(header.body_offset)
            body = file.read(header.points * header.point_size)
        return np.frombuffer(body, dtype=dtype, count=header.points).copy()
    if header.data == "binary_compressed":
        compressed, uncompressed = _compressed_sizes(path, header)
        with Path(path).open("rb") as file:
            file.seek(header.body_offset + 8)
            stream = file.read(compressed)
        try:
            body = lzf_decompress(stream, uncompressed)
        except LzfError as error:
            raise PcdError(f"corrupt compressed body ({error})") from None
        return _from_columns(body, header, dtype)
    return _from_ascii(_ascii_lines(path, header)[: header.points], header, dtype)


def _from_columns(body: bytes, header: PcdHeader, dtype: np.dtype) -> np.ndarray:
    """binary_compressed bodies store each field's values for all points, field after field."""
    records = np.empty(header.points, dtype=dtype)
    offset = 0
    for name, field in zip(dtype.names, header.fields):
        length = header.points * field.size * field.count
        values = np.frombuffer(body, dtype="<" + field.numpy_code(), count=header.points * field.count,
                               offset=offset)
        records[name] = values.reshape(records[name].shape)
        offset += length
    return records


def _from_ascii(lines: list[bytes], header: PcdHeader, dtype: np.dtype) -> np.ndarray:
    """Parse ascii lines; integer and float fields keep their exact values, and a 4-byte F
    colour field keeps its bit pattern (it is a packed 0x00RRGGBB, not a number)."""
    expected = header.values_per_point
    rows = [line.split() for line in lines]
    short = next((index for index, row in enumerate(rows) if len(row) != expected), None)
    if short is not None:
        raise PcdError(
            f"point {short} has {len(rows[short])} values, the header declares {expected} per point"
        )
    records = np.empty(header.points, dtype=dtype)
    column = 0
    try:
        for name, field in zip(dtype.names, header.fields):
            tokens = [row[column:column + field.count] for row in rows]
            if field.type == "F":
                values = np.array(tokens, dtype=np.float64).astype(field.numpy_code())
            else:
                values = np.array(tokens, dtype=np.int64 if field.type == "I" else np.uint64)
            records[name] = values.reshape(records[name].shape)
            column += field.count
    except ValueError as error:
        raise PcdError(f"unreadable value in the ascii body ({str(error).splitlines()[0]})") from None
    return records


def packed_colours(values: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 red, green, blue from a packed 4-byte rgb / rgba field (F, U or I typed)."""
    values = np.ascontiguousarray(values)
    if values.dtype.itemsize != 4:
        raise PcdError(f"a colour field must have 4 bytes per value, this one has {values.dtype.itemsize}")
    packed = values.view("<u4")
    return np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=1).astype(np.uint8)


def pack_colours(colours: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 red, green, blue -> (N,) float32 carrying 0x00RRGGBB, as Open3D writes `rgb`."""
    colours = np.asarray(colours, dtype=np.uint32)
    packed = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    return packed.astype("<u4").view("<f4")


def write_pcd(path: Path, columns: Mapping[str, np.ndarray], data: str = "binary") -> None:
    """Write 1-D columns of equal length as a PCD file (ascii or binary), fields in the given
    order, the header in Open3D's form. Column dtypes: float32/64, (u)int8/16/32/64."""
    if data not in ("ascii", "binary"):
        raise ValueError(f"write_pcd writes ascii or binary, not {data!r}")
    arrays = {name: np.asarray(values) for name, values in columns.items()}
    count = len(next(iter(arrays.values())))
    if any(array.shape != (count,) for array in arrays.values()):
        raise ValueError("every PCD column must be 1-D with the same length")
    kinds = [PCD_TYPES[array.dtype.newbyteorder("=").str[1:]] for array in arrays.values()]
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(arrays)}\n"
        f"SIZE {' '.join(str(size) for _, size in kinds)}\n"
        f"TYPE {' '.join(kind for kind, _ in kinds)}\n"
        f"COUNT {' '.join('1' for _ in kinds)}\n"
        f"WIDTH {count}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {count}\nDATA {data}\n"
    )
    record = np.dtype([(name, "<" + array.dtype.newbyteorder("=").str[1:]) for name, array in arrays.items()])
    records = np.empty(count, dtype=record)
    for name, array in arrays.items():
        records[name] = array
    with Path(path).open("wb") as file:
        file.write(header.encode("ascii"))
        if data == "binary":
            file.write(records.tobytes())
            return
        lines = []
        for row in records:
            lines.append(" ".join(_ascii_value(value) for value in row))
        file.write(("\n".join(lines) + ("\n" if lines else "")).encode("ascii"))


def _ascii_value(value) -> str:
    if isinstance(value, (np.floating, float)):
        return f"{float(value):.9g}"
    return str(int(value))
