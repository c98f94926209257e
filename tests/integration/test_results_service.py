"""Results service on both backends: numbers equal the statistics engine applied to sufficient
statistics computed independently (pandas) from the same rows; running-min p-values; SRM alert;
recommendation honours guardrails."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from experiments.db import Assignment, Event, Experiment
from experiments.services import catalog, demo_data, experiments, results
from experiments.stats import ProportionStatistic, SampleMeanStatistic, sequential_test

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
SPEC = {
    "key": "res",
    "name": "Results test",
    "variants": [
        {"key": "control", "weight": 0.5},
        {"key": "coupon", "weight": 0.5, "incentive": "coupon_5"},
    ],
    "metrics": {"primary": "conversion", "secondary": ["revenue"], "guardrail": ["margin"]},
    "design": {"type": "sequential", "alpha": 0.05, "n_star": 2000, "cuped": False},
}


def populate(session, n_per_arm=(800, 800), p=(0.10, 0.25), margin=(5.0, -3.0), seed=0):  # type: ignore[no-untyped-def]
    catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    experiments.create_experiment(session, SPEC, actor="test")
    experiments.transition(session, "res", "running", actor="test")
    experiment = experiments.get_experiment(session, "res")
    rng = np.random.default_rng(seed)
    rows = []
    for arm, variant in enumerate(experiment.variants):
        for i in range(n_per_arm[arm]):
            unit = f"{variant.key}-{i}"
            exposed = T0 + dt.timedelta(hours=int(rng.integers(0, 24 * 5)))
            session.add(
                Assignment(
                    experiment_id=experiment.id,
                    unit_id=unit,
                    variant_id=variant.id,
                    first_exposure_at=exposed,
                )
            )
            if rng.random() < p[arm]:
                when = exposed + dt.timedelta(hours=int(rng.integers(1, 24 * 20)))
                value = float(rng.gamma(2.0, 30.0))
                rows.append((unit, variant.key, "order", value, when))
                rows.append((unit, variant.key, "margin", margin[arm] + rng.normal(0, 4), when))
                # an order outside the 30-day window must not count
                rows.append((unit, variant.key, "order", 999.0, exposed + dt.timedelta(days=45)))
    for k, (unit, _, name, value, when) in enumerate(rows):
        session.add(Event(event_id=f"e{k}", unit_id=unit, name=name, value=value, occurred_at=when))
    session.flush()
    frame = pd.DataFrame(rows, columns=["unit", "variant", "name", "value", "when"])
    return experiment, frame[frame["when"] < T0 + dt.timedelta(days=40)]


def pandas_statistic(
    frame: pd.DataFrame, experiment: Experiment, variant: str, name: str, binary: bool, n: int
) -> SampleMeanStatistic:
    per_unit = frame[(frame.variant == variant) & (frame.name == name)].groupby("unit")["value"]
    values = (per_unit.size() > 0).astype(float) if binary else per_unit.sum()
    values = np.concatenate([values.to_numpy(), np.zeros(n - len(values))])
    if binary:
        return ProportionStatistic(n=n, sum=float(values.sum()))
    return SampleMeanStatistic(n=n, sum=float(values.sum()), sum_squares=float((values**2).sum()))


def test_results_equal_the_engine_on_independent_statistics(db_session) -> None:
    experiment, frame = populate(db_session)
    out = results.refresh(db_session, "res", as_of=T0 + dt.timedelta(days=60))
    assert out["n_units"] == 1600
    by_metric = {m["metric"]: m for m in out["metrics"]}
    assert [m["role"] for m in out["metrics"]] == ["primary", "secondary", "guardrail"]
    for metric, event, binary in (
        ("conversion", "order", True),
        ("revenue", "order", False),
        ("margin", "margin", False),
    ):
        control = pandas_statistic(frame, experiment, "control", event, binary, 800)
        treated = pandas_statistic(frame, experiment, "coupon", event, binary, 800)
        expected = sequential_test(control, treated, alpha=0.05, relative=True, tuning_n=2000)
        got = by_metric[metric]["variants"][1]
        assert by_metric[metric]["variants"][0]["mean"] == pytest.approx(control.mean, rel=1e-9)
        assert got["lift"] == pytest.approx(expected.effect, rel=1e-9)
        assert got["ci"] == pytest.approx([expected.ci_low, expected.ci_high], rel=1e-9)
        assert got["p_value"] == pytest.approx(expected.p_value, rel=1e-9, abs=1e-12)
    assert "SELECT" in by_metric["conversion"]["sql"].upper()
    # conversion rises, margin falls: the engine must not recommend shipping the coupon
    assert by_metric["margin"]["variants"][1]["harm"] is True
    assert out["recommendation"]["action"] == "stop"
    assert "harms margin" in out["recommendation"]["reason"]


def test_running_minimum_and_history(db_session) -> None:
    populate(db_session, p=(0.10, 0.16), margin=(5.0, 5.0), seed=3)
    ps = []
    for day in range(1, 8):
        out = results.refresh(db_session, "res", as_of=T0 + dt.timedelta(days=day * 4))
        variant = out["metrics"][0]["variants"][1]
        ps.append((variant["p_value"], variant["p_value_running_min"]))
    running = [r for _, r in ps if r is not None]
    assert running == sorted(running, reverse=True)  # never increases
    assert all(r <= p + 1e-15 for p, r in ps if p is not None)
    assert len(results.history(db_session, "res")) == 7
    assert results.latest(db_session, "res")["looks"] == [
        h["computed_at"] for h in results.history(db_session, "res")
    ]


def test_sample_ratio_mismatch_is_flagged(db_session) -> None:
    populate(db_session, n_per_arm=(1000, 800), p=(0.1, 0.3), seed=5)
    out = results.refresh(db_session, "res", as_of=T0 + dt.timedelta(days=60))
    assert out["srm"]["observed"] == [1000, 800]
    assert out["srm"]["alert"] is True and out["srm"]["p_value"] < 0.001
    assert out["recommendation"]["action"] == "investigate"
