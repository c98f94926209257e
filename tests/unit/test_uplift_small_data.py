"""Small-data defaults: cross-fitted folds and the default deep ensemble (CPU, seeded, small)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uplift import UpliftModel
from uplift.metrics import pehe
from uplift.small_data import (
    ENSEMBLE_MAX_USERS,
    ENSEMBLE_SIZE,
    covariates_imbalanced,
    default_members,
    fold_splits,
    regularization,
)

torch.set_num_threads(1)

FAST = {"representation": (32, 32), "head": (16,), "verbose": False, "random_state": 0}


def noisy_problem(n: int, seed: int = 0):
    """Two arms, tau = 1 + x0, unit noise: small and noisy, where one network varies a lot."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    t = rng.integers(0, 2, n)
    tau = 1.0 + X[:, 0]
    y = X[:, 1] + 0.5 * X[:, 2] ** 2 + t * tau + rng.normal(size=n)
    return X, t, y, tau


def test_fold_splits_partition_the_rows_and_stratify_by_arm() -> None:
    arm = np.repeat([0, 1, 2], [50, 23, 7])
    splits = fold_splits(arm, 5, seed=3)
    assert len(splits) == 5
    vals = np.concatenate([val for _, val in splits])
    assert np.array_equal(np.sort(vals), np.arange(80))  # disjoint and covering
    for train, val in splits:
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(80))
        assert len(np.intersect1d(train, val)) == 0
    sizes = np.array([len(val) for _, val in splits])
    assert sizes.max() - sizes.min() <= 1
    for a, total in ((0, 50), (1, 23), (2, 7)):
        per_fold = np.array([(arm[val] == a).sum() for _, val in splits])
        assert per_fold.sum() == total and per_fold.max() - per_fold.min() <= 1
    assert all(
        np.array_equal(v1, v2)
        for (_, v1), (_, v2) in zip(splits, fold_splits(arm, 5, seed=3), strict=True)
    )
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_splits(arm, 1, seed=0)


def test_default_ensemble_size_depends_on_the_data_size() -> None:
    assert default_members(672) == ENSEMBLE_SIZE == 5
    assert default_members(ENSEMBLE_MAX_USERS) == 5
    assert default_members(ENSEMBLE_MAX_USERS + 1) == 1
    assert default_members(50_000) == 5  # the simulator benchmark's size (since session 3)
    X, t, y, _ = noisy_problem(200)
    assert len(UpliftModel(max_epochs=1, **FAST).fit(X, t, y, control=0).members_) == 5
    single = UpliftModel(max_epochs=1, n_estimators=1, **FAST).fit(X, t, y, control=0)
    assert len(single.members_) == 1


def test_members_early_stop_on_their_own_fold() -> None:
    X, t, y, _ = noisy_problem(300)
    model = UpliftModel(max_epochs=4, architecture="tarnet", **FAST).fit(X, t, y, control=0)
    first_seed = int(np.random.default_rng(0).integers(0, 2**31 - 1, 5)[0])
    spec = model.outcome_spec_
    for net, (_, val), score in zip(
        model.members_, fold_splits(t, 5, first_seed), model.validation_scores_, strict=True
    ):
        numeric, codes = model.encoder_.transform(X[val])
        with torch.no_grad():
            raw = net(torch.from_numpy(numeric), torch.from_numpy(codes))["outcomes"]
        factual = raw[torch.arange(len(val)), torch.from_numpy(t[val]), 0].double().numpy()
        loss = np.mean((factual - (y[val] - spec.loc) / spec.scale) ** 2)
        assert loss == pytest.approx(score, rel=1e-4)


def test_cross_fitted_ensemble_beats_one_network_on_noisy_small_data() -> None:
    X, t, y, tau = noisy_problem(500)
    X_new, _, _, tau_new = noisy_problem(2000, seed=1)
    params = {**FAST, "architecture": "tarnet", "representation": (64, 64), "head": (32,)}
    ensemble = UpliftModel(**params).fit(X, t, y, control=0)
    single = UpliftModel(n_estimators=1, **params).fit(X, t, y, control=0)
    err_ensemble = pehe(tau_new, ensemble.effect(X_new)[:, 0])[0]
    err_single = pehe(tau_new, single.effect(X_new)[:, 0])[0]
    err_constant = pehe(tau_new, np.full_like(tau_new, tau.mean()))[0]
    assert err_ensemble < err_single, (err_ensemble, err_single)
    assert err_ensemble < 0.7 * err_constant, (err_ensemble, err_constant)


def test_regularization_defaults_by_regime_and_explicit_values_win() -> None:
    assert regularization(None, "auto", None, small=True) == (1e-3, False, "mmd", 0.3)
    assert regularization(None, "auto", None, small=False) == (1e-4, True, None, 1.0)
    assert regularization(0.0, None, 2.0, small=True) == (0.0, False, None, 2.0)
    assert regularization(5e-4, "wasserstein", None, small=False) == (
        5e-4,
        True,
        "wasserstein",
        1.0,
    )
    with pytest.raises(ValueError, match="balance='bogus' is unknown"):
        regularization(None, "bogus", None, small=True)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        regularization(-1.0, "auto", None, small=True)
    X, t, y, _ = noisy_problem(100)
    with pytest.raises(ValueError, match="balance_weight must be >= 0"):
        UpliftModel(max_epochs=1, balance_weight=-0.1, **FAST).fit(X, t, y, control=0)


def test_imbalance_test_flags_confounded_arms_but_not_randomized_ones() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 6))
    codes = rng.integers(1, 4, (600, 1))
    randomized = rng.integers(0, 3, 600)
    assert not covariates_imbalanced(X, codes, [4], randomized)
    # treatment more likely for large x0 (as in IHDP, where a subgroup of treated was removed)
    confounded = (rng.random(600) < 1 / (1 + np.exp(-1.5 * X[:, 0]))).astype(np.int64)
    assert covariates_imbalanced(X, codes, [4], confounded)
    # ... and in the categorical column alone
    by_level = np.where(codes[:, 0] == 1, rng.random(600) < 0.8, rng.random(600) < 0.2)
    assert covariates_imbalanced(X, codes, [4], by_level.astype(np.int64))
    model = UpliftModel(max_epochs=1, n_estimators=1, **FAST)
    y = X[:, 1] + rng.normal(size=600)
    model.fit(X, confounded, y, control=0)
    assert model.architecture_ == "snet"  # small and confounded (IHDP's case)
    model.fit(X, randomized.clip(0, 1), y, control=0)
    assert model.architecture_ == "tarnet"  # small and randomized


def test_auto_architecture_above_small_data_follows_the_randomization_test() -> None:
    """Above 20,000 users "auto" is TARNet on randomized arms and DragonNet when the arms'
    covariates differ (treatment chosen by x0: confounded)."""
    n = 21_000
    X, t, y, _ = noisy_problem(n, seed=1)
    params = {**FAST, "max_epochs": 1, "n_estimators": 1}
    randomized = UpliftModel(**params).fit(X, t, y, control=0)
    assert randomized.architecture_ == "tarnet"
    confounded_t = (X[:, 0] + np.random.default_rng(2).normal(size=n) > 0).astype(int)
    confounded = UpliftModel(**params).fit(X, confounded_t, y, control=0)
    assert confounded.architecture_ == "dragonnet"
    assert (
        UpliftModel(architecture="dragonnet", **params).fit(X, t, y, control=0).architecture_
        == "dragonnet"
    )
