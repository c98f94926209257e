"""Exact, order-independent sums of float64 arrays: the same plan however the users are split.

Layer: ``experiments.strategy`` (pure numpy). The allocation's discrete decisions (does the spend
above a lambda fit the budget? how much budget is left for the greedy fill?) rest on sums of
millions of floats. A float sum depends on the order of its terms, so a single process and a
Spark job, which adds partition totals, could disagree in the last bit and — where a sum lies
within rounding of the budget — choose a different lambda. These helpers make the decisions a
function of the multiset of terms alone:

- :func:`exact_sum` returns the exact sum as an integer count of ``2**-SCALE`` (every float64 is
  an integer multiple of ``2**-1074``, and mantissas are at most 53 bits), so partial results
  from any partitioning add up to the same integer;
- :func:`to_float` rounds it correctly (CPython's integer true division is correctly rounded);
- :func:`fits` decides ``sum <= budget`` exactly: from a float sum when the rounding error bound
  (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. 4.4: any summation
  order of n terms errs by at most ``gamma_{n-1} sum |x_i|``) keeps it clear of the budget, else
  from the exact sum.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

SCALE = 1126  # 1074 (smallest subnormal) + 53 (mantissa bits): every term is an integer
_SPLIT = 26  # mantissas are split in two halves whose bincount sums stay exact in float64
_CHUNK = 1 << 25  # terms per bincount: 2**25 * 2**27 < 2**53
_BAND = 31  # exponents within 31 of the largest value take the fast path
_LIMB_CHUNK = 1 << 16  # terms per limb sum (cache-sized; 2**16 * 2**31 < 2**53)
_UNIT = 2.0**-53


def _bits_sum(x: np.ndarray) -> int:
    """Exact sum of any finite float64 array via its mantissas and exponents (slow path)."""
    total = 0
    for start in range(0, x.size, _CHUNK):
        mant, exp = np.frexp(x[start : start + _CHUNK])
        m = np.ldexp(mant, 53).astype(np.int64)  # exact: |m| < 2**53
        shift = exp.astype(np.int64) + (SCALE - 53)  # >= 0 for every float64
        base = int(shift.min())
        where = shift - base
        high = np.bincount(where, weights=m >> _SPLIT)
        low = np.bincount(where, weights=m & ((1 << _SPLIT) - 1))
        for j in np.flatnonzero((high != 0) | (low != 0)):
            total += ((int(high[j]) << _SPLIT) + int(low[j])) << (base + int(j))
    return total


def _band_sum(x: np.ndarray) -> int:
    """Exact sum of non-negative floats: those within 2**BAND of the largest as three 31-bit
    integer limbs (float sums of integers below 2**53 are exact in any order), the rest by bits."""
    top = float(x.max())
    if top == 0.0:
        return 0
    e = int(np.frexp(top)[1])  # top < 2**e
    lsb = e - _BAND - 53  # every value >= 2**(e - BAND) is a multiple of 2**lsb
    if not -1000 < lsb < 1000:  # scale factors must stay normal floats: take the slow path
        return _bits_sum(x)
    floor_value = 2.0 ** (e - _BAND)
    up, down31, down62 = 2.0**-lsb, 2.0**-31, 2.0**-62
    sums = [0, 0, 0]
    rest = 0
    y = np.empty(min(x.size, _LIMB_CHUNK))
    limb = np.empty_like(y)
    for start in range(0, x.size, _LIMB_CHUNK):
        part = x[start : start + _LIMB_CHUNK]
        size = part.size
        if float(part.min()) < floor_value:  # rare: values far below the largest
            small = part < floor_value
            rest += _bits_sum(part[small])
            part = np.where(small, 0.0, part)
        yy, ll = y[:size], limb[:size]
        np.multiply(part, up, out=yy)  # exact: integers below 2**(BAND + 53)
        np.multiply(yy, down62, out=ll)
        np.floor(ll, out=ll)
        sums[0] += int(ll.sum())
        ll *= 2.0**62
        yy -= ll  # exact: the low 62 bits
        np.multiply(yy, down31, out=ll)
        np.floor(ll, out=ll)
        sums[1] += int(ll.sum())
        ll *= 2.0**31
        yy -= ll
        sums[2] += int(yy.sum())
    total = (sums[0] << 62) + (sums[1] << 31) + sums[2]
    return (total << (lsb + SCALE)) + rest


def exact_sum(values: np.ndarray) -> int:
    """``sum(values) * 2**SCALE`` exactly, as a Python int (values must be finite)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return 0
    low, high = float(x.min()), float(x.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("exact_sum needs finite values; NaN or inf found")
    if low >= 0:
        return _band_sum(x)
    if high <= 0:
        return -_band_sum(-x)
    return _band_sum(np.maximum(x, 0.0)) - _band_sum(np.maximum(-x, 0.0))


def float_units(value: float) -> int:
    """A float as an exact count of ``2**-SCALE`` (the unit of :func:`exact_sum`)."""
    numerator, denominator = float(value).as_integer_ratio()
    return (numerator << SCALE) // denominator  # denominator is a power of two <= 2**1074


def to_float(units: int, divisor: int = 1) -> float:
    """``units * 2**-SCALE / divisor`` correctly rounded to float64 (e.g. an exact mean)."""
    return float(Fraction(units, divisor << SCALE))


def exact_mean(values: np.ndarray) -> float:
    """The correctly rounded mean of ``values`` (independent of their order)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("exact_mean of no values")
    return to_float(exact_sum(x), x.size)


def rounding_bound(abs_sum: float, n_terms: int) -> float:
    """Largest error of a float sum of ``n_terms`` terms whose float sum of |x| is ``abs_sum``."""
    gamma = 2.0 * max(n_terms, 1) * _UNIT  # 2 n u covers gamma_{n-1} and the rounding of abs_sum
    return gamma * abs_sum / (1.0 - gamma) + 2.0**-1074 * n_terms


def fits(
    float_sum: float, abs_sum: float, n_terms: int, budget: float, exact: Callable[[], int]
) -> bool:
    """Exactly ``sum <= budget``; ``exact()`` (the :func:`exact_sum` units) is called only when
    the float sum lies within its rounding bound of the budget."""
    margin = rounding_bound(abs_sum, n_terms)
    if float_sum + margin < budget:
        return True
    if float_sum - margin > budget:
        return False
    return exact() <= float_units(budget)


def fits_sum(x: np.ndarray, budget: float, *, nonnegative: bool = False) -> bool:
    """Exactly ``sum(x) <= budget`` (:func:`fits` on one array)."""
    arr = np.asarray(x, dtype=np.float64).ravel()
    total = float(arr.sum())
    abs_total = total if nonnegative else float(np.abs(arr).sum())
    return fits(total, abs_total, arr.size, budget, lambda: exact_sum(arr))
