"""The power calculator behind the experiment form: sample size and duration (read-only helper).

Layer: experiments.services. It only combines ``experiments.stats.power`` (fixed-horizon and
sequential sizes) with the traffic an experiment will see; it touches no database.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from experiments.errors import ValidationError
from experiments.stats import fixed_sample_size, relative_to_absolute, sequential_sample_size


@dataclass(frozen=True)
class PowerPlan:
    """Sizes per arm and in total, the N* to tune the confidence sequence to, and the duration."""

    effect: float
    variance: float
    n_per_arm_fixed: int
    n_per_arm_sequential: int
    n_total_fixed: int
    n_total_sequential: int
    n_star: int
    days_fixed: int | None
    days_sequential: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(field: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(field, f"{value} must be a positive number")
    return value


def plan_sample_size(
    *,
    baseline: float,
    relative_mde: float,
    std_dev: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    daily_units: float | None = None,
    coverage: float = 1.0,
) -> PowerPlan:
    """Plan an experiment that detects a relative lift ``relative_mde`` on ``baseline``.

    A binary metric (no ``std_dev``) has variance p (1 - p) with p = ``baseline``; a mean metric
    takes its standard deviation. Each treatment arm is compared with the control, so every arm
    needs the per-arm size and N* is the size of one comparison (control + one treatment).
    """
    if std_dev is None:
        if not 0 < baseline < 1:
            raise ValidationError(
                "baseline", f"{baseline} is not a rate in (0, 1); give a standard deviation too"
            )
        variance = baseline * (1 - baseline)
    else:
        variance = _positive("std_dev", std_dev) ** 2
    if not 0 < alpha < 1:
        raise ValidationError("alpha", f"{alpha} is outside (0, 1)")
    if not 0 < power < 1:
        raise ValidationError("power", f"{power} is outside (0, 1)")
    if arms < 2:
        raise ValidationError("arms", "an experiment has at least two arms")
    if not 0 < coverage <= 1:
        raise ValidationError("coverage", f"{coverage} is outside (0, 1]")
    effect = relative_to_absolute(_positive("relative_mde", abs(relative_mde)), baseline)
    if effect == 0:
        raise ValidationError("baseline", "a zero baseline makes every relative lift zero")
    n_fixed = fixed_sample_size(effect, variance, alpha, power)
    n_sequential = sequential_sample_size(effect, variance, alpha, power)

    def days(total: int) -> int | None:
        if daily_units is None:
            return None
        return math.ceil(total / (_positive("daily_units", daily_units) * coverage))

    return PowerPlan(
        effect=effect,
        variance=variance,
        n_per_arm_fixed=n_fixed,
        n_per_arm_sequential=n_sequential,
        n_total_fixed=n_fixed * arms,
        n_total_sequential=n_sequential * arms,
        n_star=2 * n_sequential,
        days_fixed=days(n_fixed * arms),
        days_sequential=days(n_sequential * arms),
    )
