"""SQL pushdown of sufficient statistics == pandas on the same rows (SQLite and PostgreSQL).

The reference below is an independent, row-by-row pandas implementation of the metric rules of
``experiments.analysis.metrics`` (first exposure, windows, caps, ratio sides, CUPED pre-period).
Random data covers several variants, events before exposure and after the window, exact window
boundaries at microsecond timestamps, units without events, events of units not in the
experiment, another experiment's assignments, capped sums, ratio metrics and the covariate.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from experiments.analysis import (
    MetricSpec,
    build_statistics_query,
    compile_sql,
    experiment_statistics,
    experiment_statistics_sql,
)
from experiments.db import Assignment, Event, Experiment, ExperimentMetric, Metric, Variant
from experiments.errors import NotFoundError, ValidationError
from experiments.stats import ProportionStatistic, RatioStatistic, RegressionAdjustedStatistic

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
METRICS: list[dict[str, Any]] = [
    {"key": "t_conv", "kind": "binary", "event_name": "order", "window_hours": 72, "cuped": True},
    {"key": "t_orders", "kind": "count", "event_name": "order", "window_hours": 48, "cap": 3.0},
    {"key": "t_revenue", "kind": "sum", "event_name": "order", "window_hours": 72, "cap": 150.0},
    {"key": "t_views", "kind": "count", "event_name": "visit", "window_hours": 24, "cuped": False},
    {
        "key": "t_aov",
        "kind": "ratio",
        "event_name": "order",
        "denominator_event": "visit",
        "window_hours": 96,
    },
]

ROLES = ["primary", "secondary", "guardrail", "secondary", "secondary"]


# --- the independent reference (pandas, row by row) ----------------------------------------------


def reference_statistics(
    exposures: pd.DataFrame,
    events: pd.DataFrame,
    metrics: list[dict[str, Any]],
    experiment_id: int,
    as_of: dt.datetime | None = None,
    dimension: pd.Series | None = None,
) -> dict[tuple[int, Any, str], dict[str, float]]:
    """{(variant_id, dimension value, metric key): statistics} from raw rows with pandas."""
    x = exposures[exposures.experiment_id == experiment_id]
    ev = events
    if as_of is not None:
        x = x[x.first_exposure_at < as_of]
        ev = ev[ev.occurred_at < as_of]
    x = x.sort_values(["first_exposure_at", "variant_id"], kind="stable")
    x = x.drop_duplicates("unit_id", keep="first").set_index("unit_id")
    if dimension is not None:
        x = x.assign(dimension=dimension.reindex(x.index).astype(object))
        x["dimension"] = x["dimension"].where(x["dimension"].notna(), None)
    else:
        x = x.assign(dimension=None)
    joined = ev.merge(x[["first_exposure_at"]], left_on="unit_id", right_index=True)
    hours = (joined.occurred_at - joined.first_exposure_at) / pd.Timedelta(hours=1)
    out: dict[tuple[int, Any, str], dict[str, float]] = {}
    for m in metrics:
        window, cap = m["window_hours"], m.get("cap")
        per_unit = functools.partial(_per_unit, joined, hours, x.index)
        frame = pd.DataFrame({"variant": x.variant_id, "dim": x.dimension})
        frame["y"] = per_unit(m["event_name"], (0, window), m["kind"], cap)
        ratio = m["kind"] == "ratio"
        cuped = m.get("cuped", True) and not ratio
        if ratio:
            frame["d"] = per_unit(m["denominator_event"], (0, window), "ratio", None)
        if cuped:
            frame["x"] = per_unit(m["event_name"], (-window, 0), m["kind"], cap)
        for (variant, dim), g in frame.groupby(["variant", "dim"], dropna=False):
            dim_value = None if isinstance(dim, float) and math.isnan(dim) else dim
            stats = {"n": len(g), "sum": g.y.sum(), "sum_squares": (g.y**2).sum()}
            if ratio:
                stats |= {
                    "denominator_sum": g.d.sum(),
                    "denominator_sum_squares": (g.d**2).sum(),
                    "sum_of_products": (g.y * g.d).sum(),
                }
            if cuped:
                stats |= {
                    "pre_sum": g.x.sum(),
                    "pre_sum_squares": (g.x**2).sum(),
                    "post_pre_sum_of_products": (g.y * g.x).sum(),
                }
            out[(int(variant), dim_value, m["key"])] = stats
    return out


def _per_unit(
    joined: pd.DataFrame,
    hours: pd.Series,
    units: pd.Index,
    name: str,
    window: tuple[float, float],
    kind: str,
    cap: float | None,
) -> pd.Series:
    """One value per exposed unit from the events of ``name`` with ``low <= hours < high``."""
    rows = joined[(joined.name == name) & (hours >= window[0]) & (hours < window[1])]
    if kind == "binary":
        values = rows.groupby("unit_id").size().clip(upper=1)
    elif kind == "count":
        values = rows.groupby("unit_id").size().astype(float)
    elif kind == "sum":
        values = rows.value.fillna(0.0).groupby(rows.unit_id).sum()
    else:  # a ratio side: an event without a value counts 1
        values = rows.value.fillna(1.0).groupby(rows.unit_id).sum()
    values = values.reindex(units, fill_value=0).astype(float)
    if cap is not None and kind != "binary":
        values = values.clip(upper=cap)
    return values


# --- random data ---------------------------------------------------------------------------------


def random_rows(
    rng: np.random.Generator, experiment_id: int, other_id: int, variant_ids: list[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(assignments, events) with every edge case the metric rules name."""
    assignments: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    n_units = 180
    for i in range(n_units):
        unit = f"u{i:04d}"
        exposed = START + dt.timedelta(seconds=float(rng.uniform(0, 5 * 86400)))
        exposed = exposed.replace(microsecond=int(rng.integers(0, 1_000_000)))
        # units go to the first three variants only: the 4th stays empty
        variant = variant_ids[int(rng.choice(3, p=[0.4, 0.35, 0.25]))]
        assignments.append(
            {
                "experiment_id": experiment_id,
                "unit_id": unit,
                "variant_id": variant,
                "first_exposure_at": exposed,
            }
        )
        if i % 4 == 0:  # also in another experiment, exposed a day earlier
            assignments.append(
                {
                    "experiment_id": other_id,
                    "unit_id": unit,
                    "variant_id": variant_ids[-1],
                    "first_exposure_at": exposed - dt.timedelta(days=1),
                }
            )
        if i % 7 == 0:
            continue  # a unit without any event
        for _ in range(int(rng.poisson(5))):
            name = str(rng.choice(["order", "visit", "other"], p=[0.45, 0.45, 0.1]))
            offset = dt.timedelta(hours=float(rng.uniform(-110, 110)))
            value = None if rng.random() < 0.15 else round(float(rng.gamma(2.0, 40.0)), 2)
            events.append(
                {"unit_id": unit, "name": name, "value": value, "occurred_at": exposed + offset}
            )
        if i % 5 == 0:  # exact boundaries: window end (out), exposure (in), pre-period start (in)
            for hours in (72, 48, 0, -72, -48, 96, 24):
                events.append(
                    {
                        "unit_id": unit,
                        "name": "order",
                        "value": 10.0,
                        "occurred_at": exposed + dt.timedelta(hours=hours),
                    }
                )
            events.append(
                {
                    "unit_id": unit,
                    "name": "visit",
                    "value": None,
                    "occurred_at": exposed + dt.timedelta(hours=24),
                }
            )
    for j in range(30):  # events of units never exposed
        events.append(
            {
                "unit_id": f"stranger{j}",
                "name": "order",
                "value": 5.0,
                "occurred_at": START + dt.timedelta(hours=j),
            }
        )
    for k, row in enumerate(events):
        row["event_id"] = f"e{k:06d}"
    return assignments, events


def create_experiment(session: Session, n_variants: int = 4) -> tuple[int, int, list[int]]:
    experiment = Experiment(key="t_analysis", name="analysis test", seed="s")
    other = Experiment(key="t_analysis_other", name="another experiment", seed="o")
    for position in range(n_variants):
        experiment.variants.append(
            Variant(position=position, key=f"v{position}", name=f"V{position}", weight=0.25)
        )
    other.variants.append(Variant(position=0, key="c", name="C", weight=1.0))
    session.add_all([experiment, other])
    session.flush()
    for role, m in zip(ROLES, METRICS, strict=True):
        metric = Metric(
            key=m["key"],
            name=m["key"],
            kind=m["kind"],
            event_name=m["event_name"],
            denominator_event=m.get("denominator_event"),
            window_hours=m["window_hours"],
            cap_value=m.get("cap"),
            cuped=m.get("cuped", True),
        )
        session.add(metric)
        session.flush()
        experiment.metric_links.append(ExperimentMetric(metric_id=metric.id, role=role))
    session.flush()
    variant_ids = [v.id for v in experiment.variants] + [other.variants[0].id]
    return experiment.id, other.id, variant_ids


def load(session: Session, seed: int = 7) -> tuple[int, list[int], pd.DataFrame, pd.DataFrame]:
    experiment_id, other_id, variant_ids = create_experiment(session)
    assignments, events = random_rows(
        np.random.default_rng(seed), experiment_id, other_id, variant_ids
    )
    session.execute(insert(Assignment), assignments)
    session.execute(insert(Event), events)
    session.flush()
    exposures = pd.DataFrame(assignments)
    event_frame = pd.DataFrame(events)
    event_frame["value"] = event_frame["value"].astype(float)
    return experiment_id, variant_ids, exposures, event_frame


def assert_matches(rows: list[Any], expected: dict[tuple[int, Any, str], dict[str, float]]) -> None:
    seen = set()
    for row in rows:
        key = (row.variant_id, row.dimension, row.metric_key)
        if key not in expected:
            assert row.n == 0 and row.sum == 0.0, f"{key}: units where pandas has none"
            continue
        seen.add(key)
        want = expected[key]
        assert row.n == want["n"], key
        for field, value in want.items():
            got = getattr(row, field)
            assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (key, field)
        for field in ("pre_sum", "denominator_sum"):
            if field not in want:
                assert getattr(row, field) is None, (key, field)
    assert seen == set(expected)


# --- tests ---------------------------------------------------------------------------------------


def test_statistics_equal_pandas(db_session: Session) -> None:
    experiment_id, variant_ids, exposures, events = load(db_session)
    rows = experiment_statistics(db_session, experiment_id)
    expected = reference_statistics(exposures, events, METRICS, experiment_id)
    assert_matches(rows, expected)
    # every variant × metric once, the empty 4th variant included, in position × link order
    assert [(r.metric_key, r.variant_id) for r in rows] == [
        (m["key"], v) for m in METRICS for v in variant_ids[:4]
    ]
    empty = [r for r in rows if r.variant_id == variant_ids[3]]
    assert all(r.n == 0 for r in empty)
    # the data exercise what they claim to: capped, excluded and covariate rows are non-trivial
    assert {r.role for r in rows} == {"primary", "secondary", "guardrail"}
    assert all(r.n > 0 and r.sum > 0 for r in rows if r.variant_id != variant_ids[3])
    assert any(r.pre_sum for r in rows)
    check_conversion(rows)
    check_show_sql(db_session, experiment_id, rows)


def check_conversion(rows: list[Any]) -> None:
    by_key = {(r.metric_key, r.variant_key): r for r in rows}
    conv = by_key[("t_conv", "v0")]
    assert isinstance(conv.to_statistic(), RegressionAdjustedStatistic)
    plain = conv.to_statistic(cuped=False)
    assert isinstance(plain, ProportionStatistic) and plain.n == conv.n and plain.sum == conv.sum
    aov = by_key[("t_aov", "v1")]
    ratio = aov.to_statistic()
    assert isinstance(ratio, RatioStatistic)
    assert ratio.mean == pytest.approx(aov.sum / aov.denominator_sum)


def check_show_sql(session: Session, experiment_id: int, rows: list[Any]) -> None:
    """The "show SQL" text is the query that runs: executed as text, it gives the same numbers."""
    sql = experiment_statistics_sql(session, experiment_id)
    dialect = session.get_bind().dialect.name
    assert sql.startswith("WITH exposure AS")
    assert f"experiment_id = {experiment_id}" in sql
    assert ("strftime(" in sql) == (dialect == "sqlite")
    assert ("INTERVAL '72 hours'" in sql) == (dialect == "postgresql")
    conv = {r.variant_id: r for r in rows if r.metric_key == "t_conv"}
    ran = session.execute(text(sql)).mappings().all()
    assert len(ran) == sum(1 for r in conv.values() if r.n)  # the SQL has no empty variant
    for row in ran:
        assert row["n"] == conv[row["variant_id"]].n
        assert float(row["m0_sum"] or 0) == conv[row["variant_id"]].sum


def test_as_of_truncates_exposures_and_windows(db_session: Session) -> None:
    experiment_id, _, exposures, events = load(db_session, seed=11)
    as_of = START + dt.timedelta(days=3, hours=5, microseconds=123)
    rows = experiment_statistics(db_session, experiment_id, as_of=as_of)
    expected = reference_statistics(exposures, events, METRICS, experiment_id, as_of=as_of)
    assert_matches(rows, expected)
    total = sum(r.n for r in rows if r.metric_key == "t_conv")
    assert 0 < total < len(exposures[exposures.experiment_id == experiment_id])


def test_metric_subset_and_pre_window(db_session: Session) -> None:
    experiment_id, _, exposures, events = load(db_session, seed=3)
    ids = dict(db_session.execute(select(Metric.key, Metric.id)).tuples().all())
    rows = experiment_statistics(
        db_session, experiment_id, metric_ids=[ids["t_revenue"]], pre_window_hours=12
    )
    assert {r.metric_key for r in rows} == {"t_revenue"}
    # the reference's pre-period is the window length; recompute with a 12 h pre-period
    metric = dict(METRICS[2])
    reference = reference_statistics(exposures, events, [metric], experiment_id)
    for row in rows:
        key = (row.variant_id, None, "t_revenue")
        if key in reference:
            assert row.sum == pytest.approx(reference[key]["sum"], rel=1e-9)
            assert row.pre_sum is not None
    twelve = _reference_pre_sum(exposures, events, experiment_id, hours=12.0, cap=150.0)
    for row in rows:
        assert row.pre_sum == pytest.approx(twelve.get(row.variant_id, 0.0), rel=1e-9, abs=1e-9)


def _reference_pre_sum(
    exposures: pd.DataFrame, events: pd.DataFrame, experiment_id: int, hours: float, cap: float
) -> dict[int, float]:
    x = exposures[exposures.experiment_id == experiment_id].set_index("unit_id")
    joined = events[events.name == "order"].merge(
        x[["first_exposure_at"]], left_on="unit_id", right_index=True
    )
    delta = (joined.occurred_at - joined.first_exposure_at) / pd.Timedelta(hours=1)
    rows = joined[(delta >= -hours) & (delta < 0)]
    per_unit = rows.value.fillna(0.0).groupby(rows.unit_id).sum().clip(upper=cap)
    per_unit = per_unit.reindex(x.index, fill_value=0.0)
    return per_unit.groupby(x.variant_id).sum().to_dict()


def test_compile_sql_other_warehouses() -> None:
    spec = MetricSpec(key="rev", kind="sum", event_name="order", window_hours=24, cuped=True)
    query = build_statistics_query(1, [spec], as_of=START)
    assert "INTERVAL '24' HOUR" in compile_sql(query, "mysql")
    assert "INTERVAL '24 hours'" in compile_sql(query, "postgresql")
    with pytest.raises(TypeError, match="dialect"):
        compile_sql(query, 42)


def test_errors_name_the_field(db_session: Session) -> None:
    experiment_id, _, _ = create_experiment(db_session)
    with pytest.raises(ValidationError) as info:
        experiment_statistics(db_session, experiment_id, metric_ids=[987654])
    assert info.value.field == "metric_ids"
    with pytest.raises(NotFoundError):
        experiment_statistics(db_session, 987654)
    assert experiment_statistics(db_session, experiment_id, metric_ids=[]) == []
    with pytest.raises(ValidationError) as info:
        experiment_statistics(db_session, experiment_id, pre_window_hours=0)
    assert info.value.field == "pre_window_hours"
    with pytest.raises(ValueError, match="window_hours"):
        MetricSpec(key="bad", kind="sum", event_name="order", window_hours=0)
