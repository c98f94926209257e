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


@pytest.fixture
def no_catenets_loaded():
    """catenets loaded by a test is dropped again, so that the next test loads its own."""
    import sys

    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "catenets"]:
        del sys.modules[name]


def test_catenets_loads_from_its_own_folder_without_shadowing_experiments(
    tmp_path, monkeypatch, no_catenets_loaded
) -> None:
    import sys

    import experiments
    from uplift import causal

    ours = experiments.__file__
    models = tmp_path / "catenets" / "models" / "torch"
    models.mkdir(parents=True)
    (tmp_path / "catenets" / "__init__.py").write_text("WHERE = 'isolated'\n")
    (tmp_path / "catenets" / "models" / "__init__.py").write_text("")
    (models / "__init__.py").write_text("class SNet:\n    pass\n")
    (tmp_path / "experiments").mkdir()  # what catenets' wheel ships beside it
    (tmp_path / "experiments" / "__init__.py").write_text("raise ImportError('shadowed')\n")
    monkeypatch.delitem(sys.modules, "catenets", raising=False)
    monkeypatch.setenv(causal.CATENETS_DIR_ENV, str(tmp_path))
    assert causal.catenets_dir() == tmp_path
    assert hasattr(causal._catenets_torch(), "SNet")
    assert sys.modules["catenets"].WHERE == "isolated"
    assert str(tmp_path) not in sys.path
    monkeypatch.delitem(sys.modules, "experiments")
    import experiments as again  # liftlab's own, not the folder's

    assert again.__file__ == ours


def test_catenets_missing_names_the_install_command(
    tmp_path, monkeypatch, no_catenets_loaded
) -> None:
    import sys

    from uplift import causal

    monkeypatch.setenv(causal.CATENETS_DIR_ENV, str(tmp_path))  # an empty folder
    monkeypatch.setitem(sys.modules, "catenets", None)  # and no ordinary install: imports fail
    with pytest.raises(ImportError, match="--no-deps --target .*catenets==0.2.4"):
        make_peer("catenets_tarnet").fit(*simulate(60)[:3], control="none")


def test_catenets_tarnet_recovers_a_binary_treatment_effect(no_catenets_loaded) -> None:
    from uplift import causal

    if not causal.catenets_available():
        pytest.skip(
            f"catenets is not installed in {causal.catenets_dir()}: {causal.INSTALL_HINT['catenets']}"
        )
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 4))
    labels = np.where(rng.random(1500) < 0.5, "none", "coupon")
    tau = 1.0 + X[:, 0]
    y = X[:, 1] + (labels == "coupon") * tau + rng.normal(scale=0.3, size=1500)
    peer = make_peer("catenets_tarnet", random_state=0).fit(X, labels, y, control="none")
    est = peer.effect(X)
    assert est.shape == (1500, 1)
    assert pehe(tau[:, None], est)[0] < 0.5 * tau.std()  # well below predicting the mean effect
