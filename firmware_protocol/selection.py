"""Device selections as lists of offsets, packed as LEB128 varints of the gaps.

READ_DEVICES and PULSE_DEVICES select devices of a row block either by a packed bit mask
or, when fewer devices are selected, by the list of their block offsets
``k = (row - row_start) * cols + col`` in increasing order. The list travels as the
unsigned LEB128 varints of the gaps: the first offset itself, then each offset minus the
previous one minus 1 (so consecutive devices cost a zero byte). A gap below 128 is one
byte; every byte but the last of a varint has its high bit set::

    offsets 3, 4, 200  ->  gaps 3, 0, 195  ->  bytes 03 00 c3 01

>>> pack_offsets(np.array([3, 4, 200])).tolist()
[3, 0, 195, 1]
>>> unpack_offsets(np.array([3, 0, 195, 1], np.uint8)).tolist()
[3, 4, 200]
"""

from __future__ import annotations

import numpy as np

from .errors import ProtocolError

__all__ = ["pack_offsets", "unpack_offsets"]


def pack_offsets(offsets: np.ndarray) -> np.ndarray:
    """Increasing non-negative offsets -> uint8 varint bytes of their gaps."""
    k = np.asarray(offsets, dtype=np.int64).reshape(-1)
    if k.size == 0:
        return np.zeros(0, np.uint8)
    gaps = np.diff(k, prepend=-1) - 1
    if gaps.min() < 0:
        raise ProtocolError("offsets must be strictly increasing and >= 0")
    groups = np.maximum(1, (np.floor(np.log2(np.maximum(gaps, 1))) // 7 + 1).astype(np.int64))
    ends = np.cumsum(groups)
    out = np.zeros(int(ends[-1]), np.uint8)
    starts = ends - groups
    for j in range(int(groups.max())):  # the j-th 7-bit group of every gap that has one
        has = groups > j
        byte = (gaps[has] >> (7 * j)) & 0x7F
        more = groups[has] > j + 1
        out[starts[has] + j] = byte | (more.astype(np.int64) << 7)
    return out


def unpack_offsets(data: np.ndarray, limit: int | None = None) -> np.ndarray:
    """uint8 varint bytes of gaps -> increasing offsets.

    Raises
    ------
    ProtocolError
        A varint left unfinished at the end, longer than 5 bytes, or an offset at or above
        ``limit``.
    """
    b = np.asarray(data, dtype=np.int64).reshape(-1)
    if b.size == 0:
        return np.zeros(0, np.int64)
    last = (b & 0x80) == 0
    if not last[-1]:
        raise ProtocolError("a varint runs past the end of the selection")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 5:
        raise ProtocolError("a varint longer than 5 bytes in the selection")
    group = np.repeat(np.arange(ends.size), lengths)
    position = np.arange(b.size) - np.repeat(starts, lengths)
    gaps = np.bincount(group, weights=((b & 0x7F) << (7 * position)).astype(np.float64),
                       minlength=ends.size).astype(np.int64)
    offsets = np.cumsum(gaps + 1) - 1
    if limit is not None and offsets[-1] >= limit:
        raise ProtocolError(f"a selected offset {int(offsets[-1])} is at or beyond {limit}")
    return offsets
