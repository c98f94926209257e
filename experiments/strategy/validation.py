"""Input checks for the strategy layer: every error names the argument and says how to fix it.

Layer: ``experiments.strategy`` (pure numpy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _float_matrix(name: str, x: object) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    return arr.astype(np.float64)


def check_pair(value: object, cost: object, n_arms: int | None = None) -> tuple[np.ndarray, ...]:
    """value and cost as 2-D float arrays of one shape (float32 kept only if both are float32)."""
    v = _float_matrix("value", value)
    c = _float_matrix("cost", cost)
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise ValueError(
            f"value must be (n_users, n_incentives) with at least one of each; got shape {v.shape} "
            "(no incentive is implicit: do not pass a column for it)"
        )
    if c.shape != v.shape:
        raise ValueError(f"cost must have the shape of value {v.shape}; got {c.shape}")
    if n_arms is not None and v.shape[1] != n_arms:
        raise ValueError(f"value has {v.shape[1]} incentive columns; this policy has {n_arms}")
    if v.dtype != c.dtype:
        v, c = v.astype(np.float64, copy=False), c.astype(np.float64, copy=False)
    return v, c


def check_matrix(name: str, x: object, like: np.ndarray) -> np.ndarray:
    arr = _float_matrix(name, x).astype(like.dtype, copy=False)
    if arr.shape != like.shape:
        raise ValueError(f"{name} must have the shape of value {like.shape}; got {arr.shape}")
    return arr


def check_budget(budget: object) -> float:
    try:
        b = float(budget)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"budget must be a number >= 0; got {budget!r}") from None
    if not np.isfinite(b) or b < 0:
        raise ValueError(f"budget = {budget!r} must be a finite number >= 0 (money to spend)")
    return b


def resolve_eligible(
    eligible: np.ndarray | Mapping[str, np.ndarray] | None,
    value: np.ndarray,
    cost: np.ndarray,
    arms: Sequence[str],
) -> np.ndarray:
    """Eligibility mask (n, k); checks value/cost are finite where eligible and cost >= 0."""
    n, k = value.shape
    if eligible is None:
        mask = np.ones((n, k), dtype=bool)
    elif isinstance(eligible, Mapping):
        unknown = sorted(set(eligible) - set(arms))
        if unknown:
            raise ValueError(f"eligible names unknown arms {unknown}; known arms: {list(arms)}")
        mask = np.ones((n, k), dtype=bool)
        for name, col in eligible.items():
            col = np.asarray(col)
            if col.shape != (n,) or col.dtype != bool:
                raise ValueError(f"eligible[{name!r}] must be a bool array of shape ({n},)")
            mask[:, list(arms).index(name)] = col
    else:
        mask = np.asarray(eligible)
        if mask.shape != (n, k) or mask.dtype != bool:
            raise ValueError(
                f"eligible must be a bool array of shape {(n, k)} or {{arm: (n,) bool}}; "
                f"got dtype {mask.dtype} and shape {mask.shape}"
            )
    if not mask.any():
        raise ValueError(
            "eligible: no user is eligible for any incentive; allow at least one arm "
            "(or pass eligible=None for all)"
        )
    for name, arr in (("value", value), ("cost", cost)):
        if np.isfinite(arr.min()) and np.isfinite(arr.max()):  # no NaN/inf (no temporary)
            continue
        finite = np.isfinite(arr)
        if not finite.all():
            if (mask & ~finite).any():
                raise ValueError(
                    f"{name} has {int((mask & ~finite).sum())} NaN or inf entries where "
                    "eligible; impute them or mark those entries eligible=False"
                )
            mask = mask & finite
    # without a mask one reduction suffices (no temporary)
    negative = cost.min() < 0 if eligible is None else (mask & (cost < 0)).any()
    if negative:
        raise ValueError("cost must be >= 0 (expected spend) where eligible; fix the cost model")
    return mask


def resolve_caps(
    caps: Sequence[float] | Mapping[str, float] | None, arms: Sequence[str]
) -> np.ndarray | None:
    """Per-arm caps as a float array (inf = no cap), or None when there are none."""
    if caps is None:
        return None
    k = len(arms)
    if isinstance(caps, Mapping):
        unknown = sorted(set(caps) - set(arms))
        if unknown:
            raise ValueError(f"caps names unknown arms {unknown}; known arms: {list(arms)}")
        arr = np.full(k, np.inf)
        for name, cap in caps.items():
            arr[list(arms).index(name)] = np.inf if cap is None else float(cap)
    else:
        arr = np.array([np.inf if c is None else float(c) for c in caps], dtype=np.float64)
        if arr.shape != (k,):
            raise ValueError(f"caps must have one entry per incentive ({k}); got {arr.shape[0]}")
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError("caps must be >= 0 (max users per arm) or inf/None for no cap")
    finite = np.isfinite(arr)
    arr[finite] = np.floor(arr[finite])
    return arr if finite.any() else None
