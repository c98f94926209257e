"""SRM chi-square against scipy, Holm/BH against statsmodels, guardrails one-sided for harm."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttest_ind

from experiments.stats import (
    MeanStats,
    adjust_family,
    adjust_p_values,
    benjamini_hochberg_adjust,
    guardrail_test,
    holm_adjust,
    srm_check,
    srm_test,
)

TOL = 1e-9


@pytest.mark.parametrize("seed", range(30))
def test_srm_matches_scipy_chisquare(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    weights = rng.dirichlet(np.ones(k))
    counts = rng.multinomial(int(rng.integers(100, 200_000)), rng.dirichlet(50 * weights))
    total = counts.sum()
    chi2, p_value = sps.chisquare(counts, f_exp=total * weights)
    result = srm_check(counts.tolist(), weights.tolist())
    assert result.chi2 == pytest.approx(chi2, rel=TOL)
    assert result.p_value == pytest.approx(p_value, abs=TOL)
    assert srm_test(counts=counts.tolist(), weights=(10 * weights).tolist()) == pytest.approx(
        p_value, abs=TOL
    )  # weights need not sum to one
    assert result.alert == (p_value < 0.001)


def test_srm_edge_cases() -> None:
    assert srm_check([5030, 4970], [0.5, 0.5]).alert is False
    assert srm_check([5200, 4800], [0.5, 0.5]).alert is True
    stray = srm_check([100, 5, 100], [0.5, 0.0, 0.5])
    assert stray.alert and stray.p_value == 0.0 and "weight is 0" in (stray.error or "")
    empty = srm_check([0, 0], [0.5, 0.5])
    assert empty.p_value == 1.0 and empty.error is not None
    with pytest.raises(ValueError, match="equal length"):
        srm_check([1, 2, 3], [0.5, 0.5])


@pytest.mark.parametrize("seed", range(15))  # statsmodels' Holm takes ~0.2 s a call
def test_holm_and_bh_match_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 30))
    p = rng.uniform(0, 1, size=m) ** rng.uniform(1, 6)  # many small p-values
    if m > 3:
        p[: m // 3] = p[m // 3]  # ties
    for ours, method in ((holm_adjust, "holm"), (benjamini_hochberg_adjust, "fdr_bh")):
        _, expected, _, _ = multipletests(p, alpha=0.05, method=method)
        np.testing.assert_allclose(ours(p), expected, rtol=0, atol=TOL)
        assert np.array_equal(adjust_p_values(p, "holm" if method == "holm" else "bh"), ours(p))


def test_adjust_family_keeps_keys() -> None:
    family = {("v1", "orders"): 0.01, ("v1", "revenue"): 0.04, ("v2", "orders"): 0.03}
    adjusted = adjust_family(family, "holm")
    assert adjusted == pytest.approx(
        {("v1", "orders"): 0.03, ("v1", "revenue"): 0.06, ("v2", "orders"): 0.06}
    )
    with pytest.raises(ValueError, match="'holm' or 'bh'"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([0.1, 1.5])


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_guardrail_is_one_sided_for_harm(higher_is_better: bool) -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(10, 2, size=300)
    b = rng.normal(9.7, 2, size=320)  # lower in treatment
    stat = lambda x: MeanStats(len(x), float(x.sum()), float((x**2).sum()))  # noqa: E731
    result = guardrail_test(stat(a), stat(b), higher_is_better=higher_is_better)
    harm = "smaller" if higher_is_better else "larger"
    _, p_value, _ = ttest_ind(b, a, alternative=harm, usevar="unequal")
    assert result.p_value == pytest.approx(p_value, abs=TOL)
    # A drop is harm only when higher is better.
    assert (result.p_value < 0.05) == higher_is_better
