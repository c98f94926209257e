"""Privacy of exported reports: k-anonymous segments and optional Laplace noise (reports layer).

A segment row (a feature level × arm comparison, a calibration decile, a balance level) is
*suppressed* when any of its user counts is below ``k_min``: every number in the row is replaced by
``None`` and ``suppressed`` is set, so no format can show a group of fewer than k users.

Differential privacy (optional, ``dp_epsilon``): each exported segment count gets Laplace noise of
scale 1/epsilon (sensitivity 1: one user changes a count by at most 1) and each exported segment
sum of a 0/1 outcome gets Laplace noise of scale 1/epsilon as well (sensitivity 1); the
differences and intervals of such rows are recomputed from the noisy counts and sums, which is
post-processing and keeps the guarantee (Dwork & Roth 2014, "The Algorithmic Foundations of
Differential Privacy", Theorem 3.6 (Laplace mechanism) and Proposition 2.1 (post-processing)).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np

COUNT_SENSITIVITY = 1.0
BINARY_SUM_SENSITIVITY = 1.0


@dataclass(frozen=True)
class Privacy:
    """The privacy settings of one report; ``rng`` draws the Laplace noise (seeded)."""

    k_min: int = 50
    dp_epsilon: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.k_min) < 1:
            raise ValueError(f"k_min must be a whole number >= 1, got {self.k_min}")
        if self.dp_epsilon is not None and not float(self.dp_epsilon) > 0:
            raise ValueError(
                f"dp_epsilon must be positive (e.g. 1.0) or None for no noise, got "
                f"{self.dp_epsilon}"
            )

    @property
    def dp(self) -> bool:
        return self.dp_epsilon is not None

    def count_scale(self) -> float | None:
        return None if self.dp_epsilon is None else COUNT_SENSITIVITY / float(self.dp_epsilon)

    def sum_scale(self) -> float | None:
        return None if self.dp_epsilon is None else BINARY_SUM_SENSITIVITY / float(self.dp_epsilon)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "k_min": int(self.k_min),
            "suppression": f"segment rows with any user count below {int(self.k_min)} are "
            "suppressed (all their numbers are null) in every format",
            "unit_ids": "never exported",
            "differential_privacy": None,
        }
        if self.dp:
            out["differential_privacy"] = {
                "mechanism": "laplace",
                "epsilon": float(self.dp_epsilon),  # type: ignore[arg-type]
                "count_sensitivity": COUNT_SENSITIVITY,
                "sum_sensitivity": BINARY_SUM_SENSITIVITY,
                "count_noise_scale": self.count_scale(),
                "sum_noise_scale": self.sum_scale(),
                "applies_to": "segment counts and conversion sums (segments table), and the "
                "observed differences recomputed from them; average effects, model outputs "
                "and curves are not noised",
                "epsilon_per_value": "each noised value spends epsilon; "
                "segments of one feature are disjoint (parallel composition)",
            }
        return out


def laplace(values: Any, scale: float, rng: np.random.Generator) -> np.ndarray:
    """``values`` + Laplace(0, scale) noise (Dwork & Roth 2014, Definition 3.3)."""
    arr = np.asarray(values, dtype=float)
    return arr + rng.laplace(0.0, scale, size=arr.shape)


def noisy_count(value: float, privacy: Privacy, rng: np.random.Generator) -> float:
    scale = privacy.count_scale()
    assert scale is not None
    return float(max(0.0, round(float(laplace(value, scale, rng)))))


def noisy_sum(value: float, upper: float, privacy: Privacy, rng: np.random.Generator) -> float:
    """A noisy sum of a 0/1 outcome, rounded and clipped to [0, upper] (post-processing)."""
    scale = privacy.sum_scale()
    assert scale is not None
    return float(min(max(0.0, round(float(laplace(value, scale, rng)))), max(upper, 0.0)))


def suppress(
    row: MutableMapping[str, Any], counts: Iterable[float], k_min: int, keep: Iterable[str]
) -> bool:
    """Null every field but ``keep`` when a count is below ``k_min``; True if suppressed."""
    small = any(c is None or c < k_min for c in counts)
    row["suppressed"] = small
    if small:
        kept = set(keep) | {"suppressed"}
        for name in list(row):
            if name not in kept:
                row[name] = None
    return small


def min_exported_count(rows: Iterable[Mapping[str, Any]], count_fields: Iterable[str]) -> float:
    """The smallest count any unsuppressed row exports (inf when none); for checks and tests."""
    fields = list(count_fields)
    values = [
        float(row[f])
        for row in rows
        if not row.get("suppressed")
        for f in fields
        if row.get(f) is not None
    ]
    return min(values) if values else float("inf")
