"""The PCD reader (tasks/common/pcd.py) and its LZF decoder, on real PCL files and real headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.common.lzf import LzfError, lzf_decompress
from tasks.common.pcd import (
    PcdError,
    check_pcd_body,
    pack_colours,
    packed_colours,
    read_pcd,
    read_pcd_header,
    write_pcd,
)

PCL = Path(__file__).parent / "fixtures" / "anovox" / "pcl"

# PCL build/io/test/v.pcd (PointCloudLibrary/pcl): a field with COUNT 33.
PCL_V_PCD = """# .PCD v.7 - Point Cloud Data file format
VERSION .7
FIELDS x y z fpfh
SIZE 4 4 4 4
TYPE F F F F
COUNT 1 1 1 33
WIDTH 2
HEIGHT 1
VIEWPOINT 0 0 0 1 0 0 0
POINTS 2
DATA ascii
1 1 1 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
2 2 2 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1
"""
# The header Open3D writes (isl-org/Open3D cpp/open3d/io/file_format/FilePCD.cpp, WritePCDHeader),
# which is how the released AnoVox .pcd files were written (o3d.io.write_point_cloud).
OPEN3D_HEADER = (
    "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\n"
    "TYPE F F F F\nCOUNT 1 1 1 1\nWIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\nDATA binary\n"
)


def test_real_ascii_file_reads_every_point_exactly():
    cloud = read_pcd(PCL / "octants.pcd")
    lines = (PCL / "octants.pcd").read_text().splitlines()[11:]
    expected = np.array([[float(value) for value in line.split()] for line in lines], dtype=np.float32)
    assert cloud.dtype.names == ("x", "y", "z") and len(cloud) == 8
    np.testing.assert_array_equal(np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1), expected)


def test_real_version_5_header_without_viewpoint():
    header = read_pcd_header(PCL / "bunny.pcd")
    assert header.points == 397 and header.data == "ascii" and header.names == ("x", "y", "z")
    cloud = read_pcd(PCL / "bunny.pcd")
    assert cloud[0].tolist() == pytest.approx((0.0054216, 0.11349, 0.040749))


def test_real_binary_file_with_unsigned_rgb_normals_and_organised_shape():
    header = read_pcd_header(PCL / "colored_cloud.pcd")
    assert (header.width, header.height, header.points) == (1, 1000, 1000)
    assert header.point_size == 32 and header.data == "binary"
    cloud = read_pcd(PCL / "colored_cloud.pcd")
    assert cloud["rgb"].dtype == np.dtype("<u4")
    normals = np.stack([cloud[f"normal_{axis}"] for axis in "xyz"], axis=1)
    # the file's normals are unit vectors: a wrong offset or byte order would break that
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-3)
    colours = packed_colours(cloud["rgb"])
    assert colours.shape == (1000, 3) and 0 < colours.mean() < 255


def test_real_binary_compressed_file_decompresses_to_the_announced_size():
    header = read_pcd_header(PCL / "car6.pcd")
    assert header.data == "binary_compressed" and header.points == 10031
    check_pcd_body(PCL / "car6.pcd", header)
    cloud = read_pcd(PCL / "car6.pcd")
    xyz = np.stack([cloud[axis] for axis in "xyz"], axis=1)
    assert np.isfinite(xyz).all()
    # one car: a few metres across (field-by-field storage decoded in the wrong order would
    # mix x, y and z into a cloud tens of metres wide)
    assert (xyz.max(axis=0) - xyz.min(axis=0) < 8).all()


def test_field_with_count_33_from_a_real_pcl_file(tmp_path):
    path = tmp_path / "v.pcd"
    path.write_text(PCL_V_PCD)
    cloud = read_pcd(path)
    assert cloud["fpfh"].shape == (2, 33)
    assert cloud["fpfh"][0].tolist() == list(range(33)) and cloud["fpfh"][1].tolist() == list(range(33, 0, -1))
    assert cloud["x"].tolist() == [1.0, 2.0]


def test_open3d_binary_rgb_is_bytes_blue_green_red_pad(tmp_path):
    path = tmp_path / "open3d.pcd"
    body = np.array([1.0, 2.0, 3.0], dtype="<f4").tobytes() + bytes((0, 0, 245, 0))
    body += np.array([4.0, 5.0, 6.0], dtype="<f4").tobytes() + bytes((143, 0, 3, 0))
    path.write_bytes(OPEN3D_HEADER.encode() + body)
    cloud = read_pcd(path)
    assert packed_colours(cloud["rgb"]).tolist() == [[245, 0, 0], [3, 0, 143]]
    assert cloud["z"].tolist() == [3.0, 6.0]


@pytest.mark.parametrize("data", ["ascii", "binary"])
def test_write_then_read_keeps_values_and_packed_colours(tmp_path, data):
    colours = np.array([[245, 0, 0], [10, 10, 10], [0, 0, 1]], dtype=np.uint8)
    columns = {"x": np.array([1.5, -2.25, 1e-3], dtype=np.float32), "y": np.zeros(3, dtype=np.float32),
               "z": np.array([0.1, 0.2, 0.3], dtype=np.float32), "rgb": pack_colours(colours),
               "label": np.array([7, 0, 255], dtype=np.uint8)}
    write_pcd(tmp_path / "c.pcd", columns, data=data)
    cloud = read_pcd(tmp_path / "c.pcd")
    for name, values in columns.items():
        np.testing.assert_array_equal(cloud[name].view(np.uint32) if name == "rgb" else cloud[name],
                                      values.view(np.uint32) if name == "rgb" else values)
    assert packed_colours(cloud["rgb"]).tolist() == colours.tolist()


def test_truncated_binary_file_is_named_truncated_from_its_size(tmp_path):
    path = tmp_path / "cut.pcd"
    path.write_bytes((PCL / "colored_cloud.pcd").read_bytes()[:-7])
    with pytest.raises(PcdError, match="truncated: 1000 points need"):
        check_pcd_body(path, read_pcd_header(path))
    with pytest.raises(PcdError, match="truncated"):
        read_pcd(path)


def test_truncated_ascii_and_compressed_files(tmp_path):
    ascii_path = tmp_path / "cut_ascii.pcd"
    ascii_path.write_text("\n".join((PCL / "octants.pcd").read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(PcdError, match="announces 8 points, the body has 5 lines"):
        read_pcd(ascii_path)
    compressed = tmp_path / "cut_compressed.pcd"
    whole = (PCL / "car6.pcd").read_bytes()
    body = read_pcd_header(PCL / "car6.pcd").body_offset
    stream_size = int(np.frombuffer(whole[body:body + 4], dtype="<u4")[0])
    compressed.write_bytes(whole[: body + 8 + stream_size - 100])  # PCL pads after the stream
    with pytest.raises(PcdError, match="truncated: the compressed body needs"):
        check_pcd_body(compressed, read_pcd_header(compressed))
    header_only = tmp_path / "header_only.pcd"
    header_only.write_text(OPEN3D_HEADER.split("DATA")[0])
    with pytest.raises(PcdError, match="ends before its DATA line"):
        read_pcd_header(header_only)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda h: h.replace("TYPE F F F F", "TYPE F F F X"), "unsupported TYPE X"),
        (lambda h: h.replace("SIZE 4 4 4 4", "SIZE 4 4 4"), "SIZE lists 3 entries for 4 FIELDS"),
        (lambda h: h.replace("DATA binary", "DATA packed"), "unsupported DATA kind"),
        (lambda h: h.replace("POINTS 2", "POINTS 3"), "POINTS 3 differs from WIDTH x HEIGHT"),
        (lambda h: h.replace("VERSION 0.7", "COLOR 1"), "unknown header keyword 'COLOR'"),
    ],
)
def test_bad_headers_are_one_line_errors(tmp_path, edit, message):
    path = tmp_path / "bad.pcd"
    path.write_bytes(edit(OPEN3D_HEADER).encode() + bytes(32))
    with pytest.raises(PcdError, match=message) as raised:
        read_pcd(path)
    assert "\n" not in str(raised.value)


def naive_lzf(data: bytes) -> bytes:
    """liblzf's decoder written byte by byte, the reference for the pattern copy."""
    out = bytearray()
    index = 0
    while index < len(data):
        control = data[index]
        index += 1
        if control < 32:
            out += data[index:index + control + 1]
            index += control + 1
            continue
        length = control >> 5
        if length == 7:
            length += data[index]
            index += 1
        start = len(out) - ((control & 31) << 8) - data[index] - 1
        index += 1
        for offset in range(length + 2):
            out.append(out[start + offset])
    return bytes(out)


def test_lzf_literals_overlapping_and_long_back_references():
    # "abc" literal; back reference length 5 at distance 3 (overlaps itself); one of length
    # 7 + 3 + 2 = 12 at distance 8 (an extra length byte); a literal tail.
    stream = bytes([2]) + b"abc" + bytes([(3 << 5) | 0, 2]) + bytes([(7 << 5) | 0, 3, 7]) + bytes([1]) + b"yz"
    expected = naive_lzf(stream)
    assert expected[:8] == b"abcabcab" and len(expected) == 22
    assert lzf_decompress(stream, len(expected)) == expected


def test_lzf_corrupt_streams_are_refused():
    with pytest.raises(LzfError, match="points before the start"):
        lzf_decompress(bytes([(1 << 5) | 0, 9]), 3)
    with pytest.raises(LzfError, match="passes the end"):
        lzf_decompress(bytes([5]) + b"ab", 6)
    with pytest.raises(LzfError, match="expands to 3 bytes, expected 4"):
        lzf_decompress(bytes([2]) + b"abc", 4)
