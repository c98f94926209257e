"""Large experiments: the model work runs on stated random samples, the statistics on every unit.

The sample caps (``heterogeneity.MAX_TRAIN_ROWS``, ``checks.MAX_ROWS``,
``checks.CROSS_CHECK_ROWS``) are lowered so that a 4,000-user experiment crosses them: the uplift
model is fitted on exactly the stated number of units, the refutations and the cross-check say
how many units they ran on out of how many, the HTML says so too, while the average effects, SRM
and the effect distribution still cover every exposed unit.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from experiments.db import Assignment, Event
from experiments.reports import build_report, checks, heterogeneity, render
from experiments.services import catalog, demo_data, experiments
from experiments.simulation import simulate_shop

KEY = "rep-sampled"
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
MODEL = {"representation": (16,), "head": (8,), "max_epochs": 3, "batch_size": 256}


def store(session, n: int) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """A randomized 2-arm experiment over a simulated shop; returns its population features."""
    shop = simulate_shop(n_users=n, seed=31)
    catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    spec = {
        "key": KEY,
        "name": "Sampled report",
        "variants": [
            {"key": "control", "weight": 0.5},
            {"key": "twenty", "weight": 0.5, "incentive": "discount_20"},
        ],
        "metrics": {"primary": "conversion"},
    }
    experiments.create_experiment(session, spec, actor="test")
    experiments.transition(session, KEY, "running", actor="test")
    variant_ids = [v.id for v in experiments.get_experiment(session, KEY).variants]
    rng = np.random.default_rng(31)
    treated = rng.random(n) < 0.5
    arm = shop.arms.index("discount_20")
    p = np.where(treated, shop.p_convert[:, arm], shop.p_convert[:, 0])
    units = shop.users["unit_id"].astype(str).to_numpy()
    experiment_id = experiments.get_experiment(session, KEY).id
    session.execute(
        insert(Assignment),
        [
            {
                "experiment_id": experiment_id,
                "unit_id": u,
                "variant_id": variant_ids[int(t)],
                "first_exposure_at": T0,
            }
            for u, t in zip(units, treated, strict=True)
        ],
    )
    buyers = np.flatnonzero(rng.random(n) < p)
    session.execute(
        insert(Event),
        [
            {
                "event_id": f"o{i}",
                "unit_id": units[i],
                "name": "order",
                "value": 50.0,
                "occurred_at": T0 + dt.timedelta(days=2),
            }
            for i in buyers
        ],
    )
    session.flush()
    return shop.users


@pytest.mark.slow  # DoWhy refuters and two EconML estimators on small samples
@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)  # model work, not SQL
def test_report_samples_the_model_work_and_says_so(db_session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from uplift import UpliftModel

    users = store(db_session, 4000)
    monkeypatch.setattr(heterogeneity, "MAX_TRAIN_ROWS", 900)
    monkeypatch.setattr(checks, "MAX_ROWS", 700)
    monkeypatch.setattr(checks, "CROSS_CHECK_ROWS", 800)
    fitted_sizes = []
    fit = UpliftModel.fit

    def recording_fit(self, X, *args, **kwargs):  # type: ignore[no-untyped-def]
        fitted_sizes.append(len(X))
        return fit(self, X, *args, **kwargs)

    monkeypatch.setattr(UpliftModel, "fit", recording_fit)
    report = build_report(
        db_session, KEY, population=users, uplift_params=MODEL, refute_simulations=3
    )

    # statistics: every exposed unit
    n_units = len(db_session.scalars(select(Assignment.unit_id)).all())
    assert n_units == 4000 == report["data_quality"]["n_units"]
    effect = next(e for e in report["average_effects"] if e["metric"] == "conversion")
    assert effect["n_control"] + effect["n_variant"] == n_units
    assert sum(report["data_quality"]["srm"]["observed"]) == n_units

    # the uplift model: fitted on exactly the stated random sample of the non-held-out units
    model = report["heterogeneity"]["model"]
    rows, is_test = heterogeneity.training_split(n_units, seed=0)
    assert fitted_sizes == [900] == [model["n_train"]] == [len(rows)]
    assert model["n_train_available"] == int((~is_test).sum()) > 900
    assert model["n_evaluated"] == int(is_test.sum())
    assert len(np.unique(rows)) == 900 and not is_test[rows].any()
    assert model["training_sample"].startswith("a random sample of 900 of the ")
    distribution = report["heterogeneity"]["effect_distribution"][0]
    assert distribution["n_users"] == n_units  # predictions for every unit
    assert report["heterogeneity"]["curves"][0]["n_users"] == int(is_test.sum())

    # refutations and cross-check: the stated sample sizes, out of every unit of the arms
    arm = report["refutations"]["arms"][0]
    assert (arm["n_users"], arm["n_available"]) == (700, n_units)
    assert "700 of 4,000" in report["refutations"]["sample"]
    assert report["cross_check"]["n_users"] == 800
    assert report["cross_check"]["n_available"] == n_units
    html = render(report, "html")[0].decode()
    assert "a random sample of 900 of the " in html
    assert report["refutations"]["sample"] in html and report["cross_check"]["sample"] in html
