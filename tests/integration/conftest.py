"""Fixtures of the integration tests that drive the `liftlab` CLI."""

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
