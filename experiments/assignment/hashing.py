"""GrowthBook-compatible bucketing hash: FNV-1a 32-bit over UTF-16 code units, scalar and batch.

Layer: ``experiments.assignment`` (pure core, numpy and the standard library only, no I/O).

The hash is versioned and frozen. Any change to how units are bucketed must become a new hash
version here, never an edit of an existing one: a user's variant in every running experiment, and
in every GrowthBook SDK fed our configuration, depends on these exact bits.

- version 1: ``fnv1a32(value + seed) % 1000 / 1000``
- version 2: ``fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000``

Strings are hashed as the JavaScript SDK's ``charCodeAt`` loop sees them, one UTF-16 code unit at a
time, so a character outside the Basic Multilingual Plane (an emoji) counts as two surrogates.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable

import numpy as np

SUPPORTED_HASH_VERSIONS = (1, 2)
# New experiments use version 2: version 1 correlates across experiments whose seeds share a prefix.
DEFAULT_HASH_VERSION = 2

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF
# UTF-16 in the machine's byte order, so that a memoryview reads code units directly.
_UTF16_NATIVE = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"
# Rows per batch chunk: a chunk's code units stay in cache while each column is hashed.
_CHUNK = 1 << 13


def utf16_code_units(text: str) -> tuple[int, ...]:
    """The UTF-16 code units of ``text``, as JavaScript's ``charCodeAt`` returns them."""
    if text.isascii():
        return tuple(text.encode("ascii"))
    return tuple(memoryview(text.encode(_UTF16_NATIVE, "surrogatepass")).cast("H"))


def fnv1a32(text: str, state: int = _FNV_OFFSET) -> int:
    """FNV-1a 32-bit hash of ``text``'s UTF-16 code units, continuing from ``state``."""
    h = state
    units: Iterable[int] = (
        text.encode("ascii")
        if text.isascii()
        else memoryview(text.encode(_UTF16_NATIVE, "surrogatepass")).cast("H")
    )
    for unit in units:
        h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF  # literals: the hot loop of the scalar API path
    return h


def bucket_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash(seed, value, version)``: a bucket in [0, 1), or None for an unknown version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def _as_string_array(values: Iterable[str] | np.ndarray) -> np.ndarray:
    """Unit ids as a numpy unicode array; refuses numbers, whose string form differs across SDKs."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(
            f"values must be a 1-D array of unit ids, got shape {arr.shape}; use .ravel()"
        )
    kind = arr.dtype.kind
    if kind == "U":
        return arr
    if kind == "T" or (kind == "O" and all(isinstance(v, str) for v in arr.tolist())):
        return arr.astype(np.str_)
    if arr.size == 0:
        return np.zeros(0, dtype="<U1")
    raise TypeError(
        f"values must be strings (got numpy dtype {arr.dtype}); convert unit ids with str() first, "
        "the way the caller's SDK formats them"
    )


def _code_unit_rows(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code units row by row: ``(units[n, width] uint32, lengths[n])`` for a unicode array.

    numpy stores ``<U`` arrays as UTF-32 code points padded with NUL, so the common case (every
    code point in the Basic Multilingual Plane) is a zero-copy view. Code points above U+FFFF are
    split into surrogate pairs with a vectorized scatter, never a per-string Python loop.
    """
    n = arr.shape[0]
    width = arr.dtype.itemsize // 4
    lengths = np.strings.str_len(arr).astype(np.int64)
    if n == 0 or width == 0:
        return np.zeros((n, 0), dtype=np.uint32), lengths
    points = np.ascontiguousarray(arr).view(np.uint32).reshape(n, width)
    if points.max() <= 0xFFFF:
        return points, lengths
    # Only the rows holding astral code points are rebuilt: each such code point becomes two
    # units, and every unit is scattered to its shifted column.
    rows = np.flatnonzero((points > 0xFFFF).any(axis=1))
    sub = points[rows]
    astral = sub > 0xFFFF
    extra = astral.cumsum(axis=1)
    sub_lengths = lengths[rows] + extra[:, -1]
    units = np.zeros((n, max(width, int(sub_lengths.max()))), dtype=np.uint32)
    units[:, :width] = points
    sub_units = np.zeros((rows.size, units.shape[1]), dtype=np.uint32)
    row_index = np.broadcast_to(np.arange(rows.size)[:, None], sub.shape)
    cols = np.arange(width)[None, :] + extra - astral
    plain = ~astral & (np.arange(width)[None, :] < lengths[rows][:, None])
    sub_units[row_index[plain], cols[plain]] = sub[plain]
    offset = sub[astral] - 0x10000
    sub_units[row_index[astral], cols[astral]] = 0xD800 + (offset >> 10)
    sub_units[row_index[astral], cols[astral] + 1] = 0xDC00 + (offset & 0x3FF)
    units[rows] = sub_units
    lengths = lengths.copy()
    lengths[rows] = sub_lengths
    return units, lengths


def _fnv_rows(start_state: int, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FNV-1a from ``start_state`` over each string's code units: ``(states, order)``.

    The states come back in ``order`` (rows sorted by length, longest first), so that the rows
    still hashing at column j are a prefix and each column is two in-place array operations.
    """
    units, unit_lengths = _code_unit_rows(arr)
    order = np.argsort(-unit_lengths, kind="stable")
    units = units[order]
    unit_lengths = unit_lengths[order]
    active = np.searchsorted(-unit_lengths, -np.arange(units.shape[1]), side="left")
    h = np.full(arr.shape[0], start_state, dtype=np.uint32)
    prime = np.uint32(_FNV_PRIME)
    for j in range(units.shape[1]):
        rows = int(active[j])
        if rows == 0:
            break
        head = h[:rows]
        np.bitwise_xor(head, units[:rows, j], out=head)
        np.multiply(head, prime, out=head)
    return h, order


def _fnv_constant(h: np.ndarray, text: str) -> np.ndarray:
    """Continue FNV-1a on every row with the same string (the seed in version 1)."""
    prime = np.uint32(_FNV_PRIME)
    for unit in utf16_code_units(text):
        np.bitwise_xor(h, np.uint32(unit), out=h)
        np.multiply(h, prime, out=h)
    return h


def _fnv_of_decimal_direct(values: np.ndarray) -> np.ndarray:
    """FNV-1a of each uint32's decimal string, digit by digit (used to build the tables)."""
    wide = values.astype(np.int64)
    h = np.full(values.shape, _FNV_OFFSET, dtype=np.uint32)
    prime = np.uint32(_FNV_PRIME)
    for power in range(9, -1, -1):
        scale = 10**power
        digit = ((wide // scale) % 10 + 48).astype(np.uint32)
        # Leading zeros are not written, except for the number 0 itself.
        started = wide >= scale if power else np.ones(values.shape, dtype=bool)
        h = np.where(started, (h ^ digit) * prime, h)
    return h


_LOW_DIGITS = 5
_LOW_SCALE = 10**_LOW_DIGITS


@functools.lru_cache(maxsize=1)
def _decimal_tables() -> tuple[np.ndarray, np.ndarray]:
    """FNV states of ``str(high)`` for every high part ``x // 10**5``, and of ``str(x)`` below 10**5."""
    high = np.arange(_MASK32 // _LOW_SCALE + 1, dtype=np.uint32)
    low = np.arange(_LOW_SCALE, dtype=np.uint32)
    return _fnv_of_decimal_direct(high), _fnv_of_decimal_direct(low)


def _fnv_of_decimal(values: np.ndarray) -> np.ndarray:
    """FNV-1a of each uint32's decimal string (version 2's second pass), without formatting strings.

    ``str(x)`` is ``str(x // 10**5)`` followed by the last five digits zero-padded (for x >= 10**5),
    so the state after the high part comes from a table and only five digit steps remain.
    """
    high_table, low_table = _decimal_tables()
    high = values // np.uint32(_LOW_SCALE)
    low = values - high * np.uint32(_LOW_SCALE)
    h = high_table[high]
    prime = np.uint32(_FNV_PRIME)
    for power in range(_LOW_DIGITS - 1, -1, -1):
        digit = (low // np.uint32(10**power)) % np.uint32(10)
        digit += np.uint32(48)
        np.bitwise_xor(h, digit, out=h)
        np.multiply(h, prime, out=h)
    small = high == 0
    if small.any():
        h[small] = low_table[low[small]]
    return h


def bucket_hash_many(
    seed: str, values: Iterable[str] | np.ndarray, version: int
) -> np.ndarray | None:
    """``bucket_hash`` for many unit ids at once: a float64 array, bit-identical to the scalar form.

    Returns None for an unknown version, as ``bucket_hash`` does. ``values`` is a 1-D array (or
    sequence) of strings; numpy drops trailing NUL characters from its strings, so ids ending in
    ``"\\x00"`` are only supported by the scalar form.
    """
    if version not in SUPPORTED_HASH_VERSIONS:
        return None
    arr = _as_string_array(values)
    out = np.empty(arr.shape[0], dtype=np.float64)
    seed_state = fnv1a32(seed)
    for start in range(0, arr.shape[0], _CHUNK):
        chunk = arr[start : start + _CHUNK]
        if version == 2:
            h, order = _fnv_rows(seed_state, chunk)
            buckets = (_fnv_of_decimal(h) % np.uint32(10000)) / 10000
        else:
            h, order = _fnv_rows(_FNV_OFFSET, chunk)
            buckets = (_fnv_constant(h, seed) % np.uint32(1000)) / 1000
        out[start + order] = buckets
    return out
