"""LZF decompression (liblzf's format), as used by PCD files with `DATA binary_compressed`.

The stream is a sequence of chunks, each starting with a control byte c:
- c < 32: a literal run; the next c + 1 bytes are copied to the output;
- c >= 32: a back reference of length (c >> 5) + 2 (a length field of 7 continues in the next
  byte, which is added), at distance ((c & 31) << 8) + next byte + 1 behind the output's end.
A reference may overlap the bytes it produces (a repeated pattern), so it is copied by pattern.
"""

from __future__ import annotations


class LzfError(ValueError):
    """The compressed stream is corrupt or does not decompress to the expected size."""


def lzf_decompress(data: bytes, expected_size: int) -> bytes:
    """Decompress an LZF stream that must expand to exactly expected_size bytes."""
    source = memoryview(data)
    output = bytearray(expected_size)
    size = len(source)
    read = written = 0
    while read < size:
        control = source[read]
        read += 1
        if control < 32:
            length = control + 1
            if read + length > size:
                raise LzfError(f"a literal run of {length} bytes passes the end of the stream")
            if written + length > expected_size:
                raise LzfError(f"the stream expands past the expected {expected_size} bytes")
            output[written:written + length] = source[read:read + length]
            read += length
            written += length
            continue
        length = control >> 5
        if length == 7:
            if read >= size:
                raise LzfError("a back reference's length byte is missing")
            length += source[read]
            read += 1
        if read >= size:
            raise LzfError("a back reference's distance byte is missing")
        start = written - ((control & 31) << 8) - source[read] - 1
        read += 1
        length += 2
        if start < 0:
            raise LzfError("a back reference points before the start of the output")
        if written + length > expected_size:
            raise LzfError(f"the stream expands past the expected {expected_size} bytes")
        distance = written - start
        if distance >= length:
            output[written:written + length] = output[start:start + length]
        else:  # overlapping: the last `distance` bytes repeat
            repeats = -(-length // distance)
            output[written:written + length] = (output[start:written] * repeats)[:length]
        written += length
    if written != expected_size:
        raise LzfError(f"the stream expands to {written} bytes, expected {expected_size}")
    return bytes(output)
