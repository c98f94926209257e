"""Bucket ranges, variation choice and namespaces, as in GrowthBook's SDKs, plus batch forms.

Layer: ``experiments.assignment`` (pure core, numpy and the standard library only, no I/O).

A unit's bucket (``bucket_hash``) lands in at most one variation's half-open range
``[start, end)``. Variation ``i`` owns the slice ``[sum(w[:i]), sum(w[:i]) + coverage * w[i])``,
so raising coverage only widens each variation's own slice: nobody already in moves elsewhere.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np

from experiments.assignment.hashing import bucket_hash, bucket_hash_many

BucketRange = tuple[float, float]

# GrowthBook falls back to equal weights when the weights do not sum to 1 within this tolerance.
WEIGHT_SUM_MIN = 0.99
WEIGHT_SUM_MAX = 1.01


def equal_weights(n: int) -> list[float]:
    """``n`` equal weights summing to 1 (empty for ``n < 1``)."""
    if n < 1:
        return []
    return [1 / n] * n


def weights_are_valid(weights: Sequence[float] | None, n: int) -> bool:
    """Whether bucketing uses ``weights`` as given rather than falling back to equal weights.

    A weight vector counts when it has one finite, non-negative number per variation and sums to
    1 within 0.01. The JavaScript SDK checks only the length and the sum; the Python SDK (and we)
    also refuse negative or non-finite weights, which would produce inverted ranges. The server
    never emits such weights, so the SDKs agree on everything it sends.
    """
    if weights is None or len(weights) != n:
        return False
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            return False
        if not math.isfinite(w) or w < 0:
            return False
    return WEIGHT_SUM_MIN <= sum(weights) <= WEIGHT_SUM_MAX


def bucket_ranges(
    n: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[BucketRange]:
    """GrowthBook's ``getBucketRanges``: one ``(start, end)`` per variation.

    Coverage is clamped to [0, 1]; invalid weights (see ``weights_are_valid``) become equal weights.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    used = (
        list(weights) if weights is not None and weights_are_valid(weights, n) else equal_weights(n)
    )
    ranges: list[BucketRange] = []
    cumulative = 0.0
    for w in used:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def in_range(bucket: float, bucket_range: BucketRange) -> bool:
    """Whether ``bucket`` lies in the half-open range ``[start, end)``."""
    return bucket_range[0] <= bucket < bucket_range[1]


def choose_variation(n: float, ranges: Sequence[BucketRange]) -> int:
    """GrowthBook's ``chooseVariation``: the first range holding bucket ``n``, or -1 (not in)."""
    for index, bucket_range in enumerate(ranges):
        if in_range(n, bucket_range):
            return index
    return -1


def choose_variation_many(
    n: np.ndarray | Sequence[float], ranges: Sequence[BucketRange]
) -> np.ndarray:
    """``choose_variation`` over an array of buckets: int64 indexes, -1 where not in the experiment.

    A NaN bucket (no hash) falls in no range, so it yields -1.
    """
    buckets = np.asarray(n, dtype=np.float64)
    chosen = np.full(buckets.shape, -1, dtype=np.int64)
    # Walk the ranges backwards so that, as in the scalar form, the first matching range wins.
    for index in range(len(ranges) - 1, -1, -1):
        start, end = ranges[index]
        chosen[(buckets >= start) & (buckets < end)] = index
    return chosen


def in_namespace(unit_id: str, namespace: tuple[str, float, float] | Sequence) -> bool:
    """GrowthBook's ``inNamespace``: whether the unit's namespace bucket is in ``[start, end)``.

    ``namespace`` is ``(namespace_id, start, end)``; the bucket is hash version 1 with seed
    ``"__" + namespace_id``, so every experiment of a namespace sees the same bucket for a unit.
    """
    namespace_id, start, end = namespace
    n = bucket_hash("__" + namespace_id, unit_id, 1)
    if n is None:
        return False
    return start <= n < end


def in_namespace_many(
    unit_ids: Iterable[str] | np.ndarray, namespace: tuple[str, float, float] | Sequence
) -> np.ndarray:
    """``in_namespace`` for many unit ids: a boolean array."""
    namespace_id, start, end = namespace
    n = bucket_hash_many("__" + namespace_id, unit_ids, 1)
    assert n is not None  # version 1 is always supported
    return (n >= start) & (n < end)


def namespace_ranges_overlap(first: BucketRange, second: BucketRange) -> bool:
    """Whether two half-open namespace ranges share any bucket (empty ranges share none).

    Two experiments in one namespace must hold disjoint ranges; the admin refuses an overlap.
    """
    a_start, a_end = first
    b_start, b_end = second
    if a_end <= a_start or b_end <= b_start:
        return False
    return a_start < b_end and b_start < a_end


def validate_namespace_range(start: float, end: float) -> None:
    """Raise ValueError unless ``0 <= start < end <= 1``."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"namespace range must be finite numbers, got start={start}, end={end}")
    if not 0 <= start < end <= 1:
        raise ValueError(
            f"namespace range must satisfy 0 <= start < end <= 1, got start={start}, end={end}; "
            "pick a slice of the namespace such as start=0, end=0.5"
        )


def ranges_keep_assignments(old: Sequence[BucketRange], new: Sequence[BucketRange]) -> bool:
    """Whether every bucket assigned under ``old`` ranges gets the same variation under ``new``.

    True when each old range ``i`` lies inside new range ``i`` and clear of every earlier new range
    (``choose_variation`` picks the first match). Raising coverage with unchanged weights always
    passes; changing weights usually does not, so a ramp should only ever change coverage.
    """
    if len(old) > len(new):
        return False
    for index, (start, end) in enumerate(old):
        if end <= start:
            continue
        new_start, new_end = new[index]
        if start < new_start or end > new_end:
            return False
        for earlier in new[:index]:
            if namespace_ranges_overlap((start, end), earlier):
                return False
    return True
