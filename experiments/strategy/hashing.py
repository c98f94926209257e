"""Stable, vectorized hash of ``(salt, unit_id)`` to a uniform number in [0, 1).

Layer: ``experiments.strategy`` (pure numpy). The strategy's holdout and exploration buckets must
not depend on any model, must be reproducible anywhere (batch job, API, another language) and must
be cheap for millions of units, so the hash is written here over whole arrays.

Version 1 (the only one): 32-bit FNV-1a (Fowler, Noll, Vo; http://www.isthe.com/chongo/tech/comp/fnv/,
offset basis 2166136261, prime 16777619) of the UTF-8 bytes of ``salt + ":" + str(unit_id)``,
followed by MurmurHash3's 32-bit finalizer ``fmix32`` (Appleby, smhasher) so that ids differing
only in their last character still spread over the whole range; result ``h / 2**32``.
A change of the recipe must be a new version, never an edit: it would move units between buckets.

Version 2: GrowthBook's hash v2 via ``experiments.assignment.bucket_hash_many(salt, ids, 2)``
(resolution 1e-4), so that any GrowthBook SDK given the salt as the seed computes the same
holdout and explore buckets.
"""

from __future__ import annotations

import numpy as np

HASH_VERSIONS: tuple[int, ...] = (1, 2)
_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3 fmix32 (smhasher, MurmurHash3.cpp): full avalanche of the 32 bits.
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _utf8_matrix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit ids → (bytes as uint8 matrix (n, width), byte length per id)."""
    text = np.asarray(values).astype(str)
    if text.ndim != 1:
        raise ValueError(f"unit_ids must be one-dimensional; got shape {text.shape}")
    width = text.dtype.itemsize // 4
    if width == 0:
        return np.zeros((text.size, 0), dtype=np.uint8), np.zeros(text.size, dtype=np.int64)
    codes = text.view(np.uint32).reshape(text.size, width)
    if codes.size and int(codes.max()) < 128:  # ASCII: code points are the UTF-8 bytes
        lengths = np.strings.str_len(text).astype(np.int64)
        return codes.astype(np.uint8), lengths
    encoded = np.strings.encode(text, "utf-8")
    width = max(encoded.dtype.itemsize, 1)
    raw = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(text.size, width)
    lengths = np.array([len(b) for b in encoded.tolist()], dtype=np.int64)
    return raw, lengths


def unit_hash(salt: str, unit_ids: np.ndarray, version: int = 1) -> np.ndarray:
    """Uniform float64 in [0, 1) per unit id, a pure function of ``(salt, str(unit_id), version)``."""
    if version not in HASH_VERSIONS:
        raise ValueError(f"hash version {version!r} is unknown; use one of {HASH_VERSIONS}")
    if version == 2:
        from experiments.assignment import bucket_hash_many

        ids = np.asarray(unit_ids).astype(str)
        if ids.ndim != 1:
            raise ValueError(f"unit_ids must be one-dimensional; got shape {ids.shape}")
        out = bucket_hash_many(salt, ids, 2)
        if out is None:
            raise ValueError("hash version 2 is not supported by experiments.assignment")
        return np.asarray(out, dtype=np.float64)
    raw, lengths = _utf8_matrix(unit_ids)
    state = _FNV_OFFSET
    for byte in (salt + ":").encode("utf-8"):  # the salt prefix is the same for every unit
        state = np.uint32((int(state) ^ byte) * int(_FNV_PRIME) & 0xFFFFFFFF)
    h = np.full(raw.shape[0], state, dtype=np.uint32)
    for j in range(raw.shape[1]):
        step = (h ^ raw[:, j]) * _FNV_PRIME
        np.copyto(h, step, where=lengths > j)
    return _fmix32(h).astype(np.float64) / 4294967296.0
