"""Peer estimators in uplift.causal: shared interface, effect recovery, errors."""

from __future__ import annotations

import numpy as np
import pytest

from uplift.causal import make_peer
from uplift.metrics import pehe

pytest.importorskip("lightgbm", reason="peers need the causal extra: pip install 'liftlab[causal]'")


def simulate(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    labels = np.array(["none", "gift", "coupon"])[rng.integers(0, 3, n)]
    tau = np.column_stack([2.0 * (X[:, 0] > 0), np.full(n, -1.0)])  # coupon, gift (sorted)
    y = X[:, 1] + (labels == "coupon") * tau[:, 0] + (labels == "gift") * tau[:, 1]
    return X, labels, y + rng.normal(scale=0.3, size=n), tau


def test_t_learner_recovers_effects_in_incentive_order() -> None:
    X, labels, y, tau = simulate(3000)
    peer = make_peer("t_learner").fit(X, labels, y, control="none")
    assert peer.incentives_ == ["coupon", "gift"]
    est = peer.effect(X)
    assert est.shape == (3000, 2)
    assert (pehe(tau, est) < 0.45).all()


def test_s_learner_shapes_and_control_errors() -> None:
    X, labels, y, _ = simulate(600)
    assert make_peer("s_learner").fit(X, labels, y, control="none").effect(X[:5]).shape == (5, 2)
    with pytest.raises(ValueError, match="control='placebo' is not among"):
        make_peer("s_learner").fit(X, labels, y, control="placebo")
    with pytest.raises(KeyError, match="unknown peer 'bart'"):
        make_peer("bart")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # econml 0.17 on scikit-learn 1.8 deprecations
@pytest.mark.filterwarnings("ignore::UserWarning")  # econml warns on LightGBM feature names
def test_econml_dr_learner_runs_per_arm() -> None:
    pytest.importorskip("econml", reason="needs econml: pip install 'liftlab[causal]'")
    X, labels, y, tau = simulate(2000)
    est = make_peer("dr_learner").fit(X, labels, y, control="none").effect(X)
    assert est.shape == (2000, 2)
    np.testing.assert_allclose(est.mean(axis=0), tau.mean(axis=0), atol=0.3)


def test_n_jobs_reaches_every_lightgbm_model_and_bad_values_are_refused() -> None:
    from uplift.causal import usable_cores

    X, labels, y, _ = simulate(600)
    peer = make_peer("t_learner", n_jobs=1).fit(X, labels, y, control="none")
    assert [m.get_params()["n_jobs"] for m in peer.models_] == [1, 1, 1]
    default = make_peer("s_learner").fit(X, labels, y, control="none")
    assert default.model_.get_params()["n_jobs"] == usable_cores() >= 1
    with pytest.raises(ValueError, match="n_jobs must be >= 1"):
        make_peer("s_learner", n_jobs=0)
