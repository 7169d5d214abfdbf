"""The PLY point-cloud format: a small reader and writer for vertex x, y, z [, intensity].

Supported: `format ascii 1.0`, `binary_little_endian 1.0` and `binary_big_endian 1.0`, with the
`vertex` element first (other elements such as faces may follow and are ignored) and scalar
vertex properties of the standard types (char/uchar/short/ushort/int/uint/float/double and their
int8/uint8/.../float64 aliases). The vertex element must have x, y and z; an `intensity`
property (or `reflectance`, `scalar_intensity`) becomes the 4th column, else intensity is 0.

Problems raise `PlyError` with one line saying what is wrong; callers add the file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
BYTE_ORDERS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
INTENSITY_NAMES = ("intensity", "reflectance", "scalar_intensity")
MAX_HEADER_LINES = 200


class PlyError(ValueError):
    """The file is not a PLY point cloud this reader supports; one line for a user."""


@dataclass(frozen=True)
class PlyHeader:
    """What the header says: format, vertex count, vertex properties, where the body starts."""

    format: str  # a key of BYTE_ORDERS
    vertex_count: int
    properties: list[tuple[str, str]]  # (name, numpy type code without byte order)
    body_offset: int  # bytes from the file start to the first vertex

    def vertex_dtype(self) -> np.dtype:
        order = BYTE_ORDERS[self.format] or "<"
        return np.dtype([(name, order + code) for name, code in self.properties])


def read_ply_header(path: Path) -> PlyHeader:
    """Parse the header of a PLY file (reads only the header's bytes)."""
    with Path(path).open("rb") as file:
        if file.readline().strip() != b"ply":
            raise PlyError("not a PLY file (the first line must be 'ply')")
        format_name = None
        vertex_count = None
        properties: list[tuple[str, str]] = []
        current_element = None
        elements_seen = 0
        for _ in range(MAX_HEADER_LINES):
            raw = file.readline()
            if not raw:
                raise PlyError("the header ends before 'end_header' (file truncated?)")
            words = raw.decode("ascii", errors="replace").split()
            if not words or words[0] in ("comment", "obj_info"):
                continue
            keyword = words[0]
            if keyword == "end_header":
                break
            if keyword == "format":
                if len(words) < 2 or words[1] not in BYTE_ORDERS:
                    raise PlyError(f"unsupported format line {' '.join(words)!r}")
                format_name = words[1]
            elif keyword == "element":
                if len(words) != 3 or not words[2].isdigit():
                    raise PlyError(f"malformed element line {' '.join(words)!r}")
                current_element = words[1]
                elements_seen += 1
                if current_element == "vertex":
                    if elements_seen != 1:
                        raise PlyError("the 'vertex' element must come first in the header")
                    vertex_count = int(words[2])
            elif keyword == "property":
                if current_element != "vertex":
                    continue  # properties of faces etc. are not read
                if len(words) != 3 or words[1] == "list":
                    raise PlyError(f"vertex property {' '.join(words[1:])!r} is not a scalar")
                if words[1] not in PLY_TYPES:
                    raise PlyError(f"unknown property type {words[1]!r}")
                properties.append((words[2], PLY_TYPES[words[1]]))
            else:
                raise PlyError(f"unknown header keyword {keyword!r}")
        else:
            raise PlyError(f"no 'end_header' within {MAX_HEADER_LINES} header lines")
        body_offset = file.tell()
    if format_name is None:
        raise PlyError("the header has no 'format' line")
    if vertex_count is None:
        raise PlyError("the header has no 'element vertex N' line")
    names = [name for name, _ in properties]
    missing = [axis for axis in ("x", "y", "z") if axis not in names]
    if missing:
        raise PlyError(f"vertex properties lack {', '.join(missing)} (have {', '.join(names)})")
    return PlyHeader(format_name, vertex_count, properties, body_offset)


def check_ply_size(path: Path, header: PlyHeader) -> None:
    """For binary files, that the file holds all vertices the header announces (cheap)."""
    if header.format == "ascii":
        return  # counting text lines would mean reading the whole file
    needed = header.body_offset + header.vertex_count * header.vertex_dtype().itemsize
    size = Path(path).stat().st_size
    if size < needed:
        raise PlyError(
            f"truncated: {header.vertex_count} vertices need {needed} bytes, the file has {size}"
        )


def read_ply_points(path: Path) -> np.ndarray:
    """The vertices of a PLY file as an (N, 4) float32 array: x, y, z, intensity (0 if absent)."""
    header = read_ply_header(path)
    check_ply_size(path, header)
    names = [name for name, _ in header.properties]
    if header.format == "ascii":
        vertices = _read_ascii_vertices(path, header)
    else:
        with Path(path).open("rb") as file:
            file.seek(header.body_offset)
            body = file.read(header.vertex_count * header.vertex_dtype().itemsize)
        structured = np.frombuffer(body, dtype=header.vertex_dtype(), count=header.vertex_count)
        vertices = np.stack([structured[name].astype(np.float64) for name in names], axis=1)
    columns = [names.index(axis) for axis in ("x", "y", "z")]
    intensity_name = next((name for name in INTENSITY_NAMES if name in names), None)
    points = np.zeros((header.vertex_count, 4), dtype=np.float32)
    points[:, :3] = vertices[:, columns]
    if intensity_name is not None:
        points[:, 3] = vertices[:, names.index(intensity_name)]
    return points


def _read_ascii_vertices(path: Path, header: PlyHeader) -> np.ndarray:
    """(N, properties) float64 from the first N body lines of an ASCII PLY."""
    with Path(path).open("rb") as file:
        file.seek(header.body_offset)
        rows = []
        for index in range(header.vertex_count):
            line = file.readline()
            if not line:
                raise PlyError(
                    f"truncated: the header announces {header.vertex_count} vertices, "
                    f"the body has {index}"
                )
            rows.append(line)
    try:
        vertices = np.loadtxt(rows, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise PlyError(f"unreadable vertex line ({str(error).splitlines()[0]})") from None
    if header.vertex_count and vertices.shape[1] != len(header.properties):
        raise PlyError(
            f"vertex lines have {vertices.shape[1]} values, the header declares "
            f"{len(header.properties)} properties"
        )
    return vertices.reshape(header.vertex_count, len(header.properties))


def write_ply_points(path: Path, points: np.ndarray, binary: bool = True) -> None:
    """Write (N, 4) x, y, z, intensity as a PLY file (binary little-endian or ASCII) of floats."""
    points = np.asarray(points, dtype=np.float32)
    format_name = "binary_little_endian" if binary else "ascii"
    header = (
        f"ply\nformat {format_name} 1.0\ncomment written by tasks/anomaly\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\nproperty float intensity\n"
        "end_header\n"
    )
    with Path(path).open("wb") as file:
        file.write(header.encode("ascii"))
        if binary:
            file.write(points.astype("<f4").tobytes())
        else:
            file.write("".join(" ".join(f"{v:.6g}" for v in row) + "\n" for row in points).encode())
