"""The power calculator's plan: checked against statsmodels' NormalIndPower, and its errors."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower

from experiments.errors import ValidationError
from experiments.services.power import plan_sample_size


@pytest.mark.parametrize(
    ("baseline", "mde", "std_dev", "alpha", "power"),
    [(0.05, 0.1, None, 0.05, 0.8), (0.3, 0.05, None, 0.01, 0.9), (40.0, 0.02, 25.0, 0.05, 0.8)],
)
def test_fixed_size_matches_statsmodels(baseline, mde, std_dev, alpha, power) -> None:
    plan = plan_sample_size(
        baseline=baseline, relative_mde=mde, std_dev=std_dev, alpha=alpha, power=power,
        arms=3, daily_units=1000, coverage=0.5,
    )  # fmt: skip
    sigma = std_dev if std_dev is not None else math.sqrt(baseline * (1 - baseline))
    reference = NormalIndPower().solve_power(
        effect_size=baseline * mde / sigma, alpha=alpha, power=power, ratio=1.0
    )
    assert plan.n_per_arm_fixed == math.ceil(reference)
    assert plan.n_total_fixed == 3 * plan.n_per_arm_fixed
    # always-valid inference costs users; N* is one comparison (control + one treatment)
    assert plan.n_per_arm_sequential > plan.n_per_arm_fixed
    assert plan.n_star == 2 * plan.n_per_arm_sequential
    assert plan.days_fixed == math.ceil(plan.n_total_fixed / 500)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline": 1.5, "relative_mde": 0.1}, "baseline"),
        ({"baseline": 0.1, "relative_mde": 0.0}, "relative_mde"),
        ({"baseline": 10.0, "relative_mde": 0.1, "std_dev": -1.0}, "std_dev"),
        ({"baseline": 0.1, "relative_mde": 0.1, "arms": 1}, "arms"),
        ({"baseline": 0.1, "relative_mde": 0.1, "daily_units": 0.0}, "daily_units"),
    ],
)
def test_bad_inputs_name_the_field(kwargs, field) -> None:
    with pytest.raises(ValidationError) as caught:
        plan_sample_size(**kwargs)
    assert caught.value.field == field
