"""Report privacy: k-anonymous segment rows (property test) and Laplace noise of the stated scale."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.reports.heterogeneity import comparison
from experiments.reports.privacy import Privacy, laplace, min_exported_count, suppress


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(min_value=1, max_value=200),
    cells=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 400), st.floats(0, 1), st.floats(0, 1)),
        min_size=1,
        max_size=20,
    ),
    epsilon=st.one_of(st.none(), st.floats(0.05, 5.0)),
)
def test_report_no_exported_segment_has_fewer_than_k_users(k, cells, epsilon) -> None:  # type: ignore[no-untyped-def]
    privacy = Privacy(k_min=k, dp_epsilon=epsilon)
    rng = np.random.default_rng(0)
    rows = []
    for n_c, n_t, rate_c, rate_t in cells:
        s_c, s_t = int(n_c * rate_c), int(n_t * rate_t)  # converters: whole numbers
        row = {"level": "x", **comparison(n_c, s_c, n_t, s_t, privacy, rng)}
        suppress(row, [n_c, n_t, row["n_control"], row["n_arm"]], k, keep=("level",))
        rows.append(row)
        if min(n_c, n_t) < k:  # the true counts decide, whatever the noise did
            assert row["suppressed"]
            assert all(v is None for name, v in row.items() if name not in ("level", "suppressed"))
    assert min_exported_count(rows, ["n_control", "n_arm"]) >= k


def test_report_laplace_noise_has_the_stated_scale() -> None:
    privacy = Privacy(k_min=1, dp_epsilon=0.25)
    assert privacy.count_scale() == 4.0 and privacy.sum_scale() == 4.0
    noise = laplace(np.zeros(40_000), privacy.count_scale(), np.random.default_rng(1))
    # Laplace(0, b): mean |x| = b, variance 2 b^2
    assert np.mean(np.abs(noise)) == pytest.approx(4.0, rel=0.03)
    assert np.var(noise) == pytest.approx(32.0, rel=0.06)
    described = privacy.describe()["differential_privacy"]
    assert described["mechanism"] == "laplace" and described["count_noise_scale"] == 4.0


def test_report_privacy_settings_name_the_fix() -> None:
    with pytest.raises(ValueError, match="k_min"):
        Privacy(k_min=0)
    with pytest.raises(ValueError, match="dp_epsilon must be positive"):
        Privacy(dp_epsilon=0.0)
