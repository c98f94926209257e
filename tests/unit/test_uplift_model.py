"""UpliftModel: effect recovery, persistence, input validation, ensembles (CPU, seeded, small)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from uplift import UpliftModel
from uplift.metrics import pehe

torch.set_num_threads(1)

FAST = {"representation": (32, 32), "head": (16,), "verbose": False, "random_state": 0}


def simulate(n: int, seed: int = 0):
    """Three arms; effects tau_a = 1 + x0 and tau_b = -0.5 x1 of known form."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    labels = np.array(["control", "a", "b"])[rng.integers(0, 3, n)]
    tau = np.column_stack([1.0 + X[:, 0], -0.5 * X[:, 1]])
    base = X[:, 0] + 0.5 * X[:, 2]
    y = base + (labels == "a") * tau[:, 0] + (labels == "b") * tau[:, 1]
    return X, labels, y + rng.normal(scale=0.5, size=n), tau


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "spend": rng.exponential(50, n),
            "channel": rng.choice(["web", "app", "store"], n),
            "tier": pd.Categorical(rng.choice(["gold", "silver"], n)),
        }
    )


@pytest.fixture(scope="module")
def fitted():
    X, labels, y, tau = simulate(2000)
    model = UpliftModel(max_epochs=25, criterion="factual", n_estimators=1, **FAST).fit(
        X, labels, y, control="control"
    )
    return model, tau, X


def test_recovers_effects(fitted) -> None:
    model, tau, X = fitted
    assert model.incentives_ == ["a", "b"]
    assert model.treatments_ == ["control", "a", "b"]
    est = model.effect(X)
    assert est.shape == (2000, 2)
    error = pehe(tau, est)
    constant = pehe(tau, np.broadcast_to(tau.mean(axis=0), tau.shape))  # ATE-only baseline
    assert (error < 0.25).all(), error
    assert (error < 0.5 * constant).all(), (error, constant)


def test_predict_outcomes_is_consistent_with_effect(fitted) -> None:
    model, _, X = fitted
    mu = model.predict_outcomes(X[:50])
    assert mu.shape == (50, 3)
    np.testing.assert_allclose(model.effect(X[:50]), mu[:, 1:] - mu[:, :1], atol=1e-6)


def test_save_load_gives_identical_effects(fitted, tmp_path) -> None:
    model, _, X = fitted
    model.save(tmp_path / "m")
    again = UpliftModel.load(tmp_path / "m")
    assert np.array_equal(again.effect(X), model.effect(X))
    assert again.get_params() == model.get_params()
    assert again.incentives_ == model.incentives_


def test_snet_recovers_confounded_effects_and_round_trips(tmp_path) -> None:
    """Small observational data: "auto" picks SNet; its effects beat the constant effect and
    survive save -> load exactly."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 4))
    t = (rng.random(1500) < 1 / (1 + np.exp(-1.5 * X[:, 0]))).astype(int)  # confounded by x0
    tau = 1.0 + X[:, 1]
    y = X[:, 0] + t * tau + rng.normal(scale=0.5, size=1500)
    model = UpliftModel(max_epochs=30, n_estimators=2, **FAST).fit(X, t, y, control=0)
    assert model.architecture_ == "snet"
    est = model.effect(X)[:, 0]
    assert pehe(tau, est)[0] < 0.5 * tau.std()
    model.save(tmp_path / "snet")
    again = UpliftModel.load(tmp_path / "snet")
    assert again.architecture_ == "snet"
    assert np.array_equal(again.effect(X), model.effect(X))


def test_random_state_makes_fits_reproducible() -> None:
    X, labels, y, _ = simulate(300)
    params = {**FAST, "max_epochs": 3}
    first = UpliftModel(**params).fit(X, labels, y, control="control").effect(X)
    second = UpliftModel(**params).fit(X, labels, y, control="control").effect(X)
    assert np.array_equal(first, second)


def test_sklearn_conventions() -> None:
    model = UpliftModel(alpha=0.5)
    assert model.get_params()["alpha"] == 0.5
    assert clone(model.set_params(beta=0.0)).get_params()["beta"] == 0.0
    assert not hasattr(model, "members_")  # __init__ stores parameters only
    with pytest.raises(Exception, match="not fitted"):
        model.effect(np.zeros((2, 4)))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda X, t, y: (X, t, y[:-1]), "y has 299 rows"),
        (lambda X, t, y: (X, t[:-1], y), "treatment has 299 rows"),
        (lambda X, t, y: (np.where(np.arange(300)[:, None] == 5, np.nan, X), t, y), "NaN"),
        (lambda X, t, y: (X, np.where(t == "control", "a", t), y), "control='control' is not"),
        (lambda X, t, y: (X, np.full(300, "control"), y), "only the control arm"),
        (lambda X, t, y: (X, t, np.where(np.arange(300) == 3, np.nan, y)), "y has NaN"),
    ],
)
def test_bad_inputs_give_clear_errors(mutate, message) -> None:
    X, labels, y, _ = simulate(300)
    X, labels, y = mutate(X, labels, y)
    with pytest.raises(ValueError, match=message):
        UpliftModel(max_epochs=1, **FAST).fit(X, labels, y, control="control")


def test_unknown_labels_are_refused() -> None:
    X, labels, y, _ = simulate(300)
    model = UpliftModel(max_epochs=1, **FAST).fit(X, labels, y, control="control")
    assert model.arm_index("b") == 1
    with pytest.raises(KeyError, match="unknown incentive 'free_shipping'"):
        model.arm_index("free_shipping")
    with pytest.raises(ValueError, match="outcome='revenue' is unknown"):
        model.effect(X, outcome="revenue")
    with pytest.raises(ValueError, match="fitted on 4"):
        model.effect(X[:, :3])


def test_unseen_category_maps_to_unknown_row() -> None:
    X = frame(400)
    rng = np.random.default_rng(1)
    labels = rng.choice(["none", "coupon"], 400)
    y = rng.binomial(1, 0.2 + 0.1 * (labels == "coupon"))
    model = UpliftModel(max_epochs=2, **FAST).fit(X, labels, y, control="none")
    assert model.outcome_spec_.kind == "binary"
    new = X.head(3).copy()
    new["channel"] = ["never-seen", None, "web"]
    missing = new.copy()
    missing["channel"] = [None, None, "web"]
    est = model.effect(new)
    assert est.shape == (3, 1) and np.isfinite(est).all()
    # documented: an unseen level and a missing value both use the 'unknown' embedding row
    np.testing.assert_array_equal(est, model.effect(missing))
    with pytest.raises(ValueError, match=r"lacks the fitted column\(s\) \['tier'\]"):
        model.effect(X.drop(columns="tier"))


def test_joint_conversion_revenue_and_ensemble_interval() -> None:
    X = frame(600)
    rng = np.random.default_rng(2)
    labels = rng.choice([0, 1, 2], 600)
    conversion = rng.binomial(1, 0.3 + 0.1 * (labels > 0))
    revenue = conversion * rng.gamma(2.0, 20.0, 600)
    model = UpliftModel(max_epochs=2, n_estimators=3, **FAST)
    model.fit(X, labels, np.column_stack([conversion, revenue]), control=0)
    assert model.outcome_spec_.targets == ["conversion", "revenue"]
    conv, rev = model.effect(X, outcome="conversion"), model.effect(X, outcome="revenue")
    assert conv.shape == rev.shape == (600, 2)
    assert (np.abs(conv) <= 1).all()
    mu = model.predict_outcomes(X, outcome="revenue")
    assert (mu >= 0).all()  # conversion probability × order value
    low, high = model.effect_interval(X, alpha=0.1, outcome="revenue")
    assert low.shape == (600, 2) and (low <= rev + 1e-9).all() and (rev <= high + 1e-9).all()
    both = model.outcomes_by_target(X)  # one forward pass, the same numbers per target
    assert list(both) == ["conversion", "revenue"]
    np.testing.assert_array_equal(both["revenue"], mu)
    np.testing.assert_array_equal(both["conversion"][:, 1:] - both["conversion"][:, :1], conv)


def test_interval_needs_an_ensemble(fitted) -> None:
    model, _, X = fitted
    with pytest.raises(ValueError, match="n_estimators >= 2"):
        model.effect_interval(X)


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_sequence_encoder(encoder, tmp_path) -> None:
    X, labels, y, _ = simulate(200)
    events = np.random.default_rng(3).integers(0, 6, (200, 7))
    model = UpliftModel(max_epochs=2, sequence_encoder=encoder, balance="wasserstein", **FAST)
    model.fit(X, labels, y, control="control", sequences=events)
    est = model.effect(X, sequences=events)
    with pytest.raises(ValueError, match="needs sequences="):
        model.effect(X)
    model.save(tmp_path / encoder)
    np.testing.assert_array_equal(
        UpliftModel.load(tmp_path / encoder).effect(X, sequences=events), est
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fits_on_cuda_with_bf16() -> None:
    X, labels, y, _ = simulate(2000)
    model = UpliftModel(max_epochs=20, device="cuda", criterion="factual", **FAST)
    model.fit(X, labels, y, control="control")
    cpu = UpliftModel(max_epochs=20, device="cpu", criterion="factual", **FAST)
    cpu.fit(X, labels, y, control="control")
    assert np.abs(model.effect(X) - cpu.effect(X)).mean() < 0.2


def funnel_data(n: int, seed: int = 0):
    """A visit whose probability the arm "a" raises with x0, then a conversion given the visit
    at a rate that depends on x1 but not on the arm; returns the true effects on both."""
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    labels = np.array(["control", "a"])[rng.integers(0, 2, n)]
    p_visit = expit(-1.0 + X[:, 2] + (labels == "a") * (0.5 + 0.5 * X[:, 0]))
    p_buy = expit(-1.0 + X[:, 1])
    visit = rng.binomial(1, p_visit)
    conversion = visit * rng.binomial(1, p_buy)
    lift = expit(-1.0 + X[:, 2] + 0.5 + 0.5 * X[:, 0]) - expit(-1.0 + X[:, 2])
    return X, labels, np.column_stack([visit, conversion]), lift, lift * p_buy


def test_funnel_outcome_recovers_visit_and_conversion_effects(tmp_path) -> None:
    X, labels, y, visit_lift, conversion_lift = funnel_data(6000)
    model = UpliftModel(outcome="funnel", max_epochs=30, n_estimators=1, **FAST)
    model.fit(X, labels, y, control="control")
    assert model.outcome_spec_.kind == "funnel"
    assert model.outcome_spec_.targets == ["visit", "conversion"]
    mu = model.outcomes_by_target(X)
    assert (mu["conversion"] <= mu["visit"] + 1e-7).all()  # P(visit) × P(conversion | visit)
    for target, truth in (("visit", visit_lift), ("conversion", conversion_lift)):
        error = pehe(truth[:, None], model.effect(X, outcome=target))[0]
        constant = pehe(truth[:, None], np.full((len(truth), 1), truth.mean()))[0]
        assert error < 0.6 * constant, (target, error, constant)
    model.save(tmp_path / "funnel")
    same = UpliftModel.load(tmp_path / "funnel")
    assert same.outcome_spec_.kind == "funnel"
    np.testing.assert_array_equal(
        same.effect(X, outcome="conversion"), model.effect(X, outcome="conversion")
    )


def test_funnel_outcome_refuses_a_conversion_without_a_visit() -> None:
    X, labels, y, _, _ = funnel_data(200)
    y[np.flatnonzero(y[:, 0] == 0)[0], 1] = 1.0
    with pytest.raises(ValueError, match=r"column 1 \(conversion\) is 1 on rows where column 0"):
        UpliftModel(outcome="funnel", max_epochs=1, **FAST).fit(X, labels, y, control="control")
    with pytest.raises(ValueError, match="needs a 2-D y"):
        UpliftModel(outcome="funnel", max_epochs=1, **FAST).fit(
            X, labels, y[:, 1], control="control"
        )
    _, _, nested, _, _ = funnel_data(200)
    model = UpliftModel(max_epochs=1, **FAST).fit(X, labels, nested, control="control")
    assert model.outcome_spec_.kind == "zero_inflated"  # "auto" keeps (conversion, revenue)
