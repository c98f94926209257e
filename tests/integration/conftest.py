"""Fixtures of the integration tests: the `liftlab` CLI runner, a small shop uplift model, and a
strategy scored by it (the online-decision, batch-run and strategy-variant tests share them)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from experiments.cli import cli


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """``run("users", "list")`` → click Result, against this test's private database."""
    monkeypatch.setenv("LIFTLAB_DATABASE_URL", db_url)
    monkeypatch.setenv("LIFTLAB_INSTANCE_DIR", str(tmp_path / "instance"))

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture(scope="module")
def shop_model(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A small uplift model trained on a simulated randomized experiment of coupon_5 and
    discount_20 against none: (model folder, feature columns)."""
    from experiments.simulation import simulate_shop
    from uplift import UpliftModel

    shop = simulate_shop(n_users=3000, seed=4)
    data = shop.randomized_experiment(arms=["none", "coupon_5", "discount_20"], seed=1)
    data["conversion"] = data["converted"].astype(float)
    features = [c for c in shop.users.columns if c != "unit_id"]
    folder = tmp_path_factory.mktemp("model") / "model"
    UpliftModel(representation=(16,), head=(8,), max_epochs=2, random_state=0, verbose=False).fit(
        data[features],
        data["treatment"].to_numpy(),
        data[["conversion", "revenue"]],
        control="none",
    ).save(folder)
    return folder, features


@pytest.fixture(scope="module")
def population():  # type: ignore[no-untyped-def]
    """400 simulated shop users (unit_id + features): the batch population of the strategy tests."""
    from experiments.simulation import simulate_shop

    return simulate_shop(n_users=400, seed=7).users


@pytest.fixture
def online_strategy(shop_model):  # type: ignore[no-untyped-def]
    """``online_strategy(session, **settings)`` creates strategy ``online`` scored by the shop
    model (a succeeded ModelRun of it): coupon_5 and discount_20, fallback coupon_5, holdout 0.1,
    explore 0.05, objective revenue, a budget of 150 that binds its batch plan, and a coupon_5
    calibration; ``settings`` override any of these. Returns the Strategy."""
    from experiments.db import ModelRun
    from experiments.services import catalog, demo_data, strategies

    def create(session, **settings):  # type: ignore[no-untyped-def]
        folder, features = shop_model
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        run = ModelRun(
            architecture="dragonnet",
            status="succeeded",
            artifact_path=str(folder),
            metrics={"features": features},
        )
        session.add(run)
        session.flush()
        data = {
            "key": "online",
            "approved_incentives": ["coupon_5", "discount_20"],
            "fallback": "coupon_5",
            "holdout_share": 0.1,
            "explore_share": 0.05,
            "objective": "revenue",
            "budget": 150.0,
            "status": "active",
            "model_run_id": run.id,
            "config": {"calibration": {"coupon_5": {"experiment_ate": 0.02}}},
            **settings,
        }
        return strategies.create_strategy(session, data, actor="test")

    return create


@pytest.fixture
def coupon_strategy():  # type: ignore[no-untyped-def]
    """``coupon_strategy(session, key, **settings)`` creates an active strategy ``key`` that
    offers coupon_5 alone (also its fallback), after the default catalog; ``settings`` add to or
    override that (budget, shares ...). Returns the Strategy."""
    from experiments.services import catalog, demo_data, strategies

    def create(session, key: str, **settings):  # type: ignore[no-untyped-def]
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        data = {
            "key": key,
            "approved_incentives": ["coupon_5"],
            "fallback": "coupon_5",
            "status": "active",
            **settings,
        }
        return strategies.create_strategy(session, data, actor="test")

    return create


@pytest.fixture
def features_of():  # type: ignore[no-untyped-def]
    """``features_of(frame, i, columns=None)``: row ``i`` of ``frame`` as a JSON request sends
    its features (plain numbers and strings), every column after ``unit_id`` or ``columns``."""

    def row_features(frame, i: int, columns=None) -> dict:  # type: ignore[no-untyped-def]
        row = frame.iloc[i]
        names = frame.columns[1:] if columns is None else columns
        return {c: (row[c].item() if hasattr(row[c], "item") else row[c]) for c in names}

    return row_features
