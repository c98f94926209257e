"""Dimension slices and exposure logs with repeated exposures: SQL == pandas (both backends).

A warehouse exposure log may hold a unit several times (and in two variants); the analysis counts
it once, from its first exposure (ties broken by the smaller variant id). Slices come from a
column of a units/attributes table (several rows per unit: the smallest value) or of the
exposure log itself (the first exposure's value). The pandas reference and the random data are
those of ``test_analysis_pushdown.py`` (loaded from the sibling file).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session

from experiments.analysis import Dimension, experiment_statistics
from experiments.db import make_engine
from experiments.db.base import UTCDateTime

_spec = importlib.util.spec_from_file_location(
    "analysis_pushdown_reference", Path(__file__).with_name("test_analysis_pushdown.py")
)
assert _spec is not None and _spec.loader is not None
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

extra = MetaData()
exposure_log = Table(
    "t_exposure_log",
    extra,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", Integer, nullable=False),
    Column("unit_id", String(200), nullable=False),
    Column("variant_id", Integer, nullable=False),
    Column("first_exposure_at", UTCDateTime(), nullable=False),
    Column("platform", String(20), nullable=False),
)
unit_attributes = Table(
    "t_unit_attributes",
    extra,
    Column("id", Integer, primary_key=True),
    Column("unit_id", String(200), nullable=False),
    Column("country", String(2)),
)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    extra.create_all(engine)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _log_and_attributes(
    rng: np.random.Generator, assignments: pd.DataFrame, variant_ids: list[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    log = assignments.copy()
    log["platform"] = rng.choice(["ios", "web"], len(log))
    again = log.sample(frac=0.3, random_state=1).copy()  # exposed again later, other variant
    again["first_exposure_at"] += pd.to_timedelta(
        rng.integers(3_600, 180_000, len(again)) * 10**6 + 7, unit="us"
    )
    again["variant_id"] = rng.choice(variant_ids[:3], len(again))
    again["platform"] = "android"
    smallest = min(variant_ids[:3])
    tie = log[log.variant_id != smallest].iloc[[0]].copy()  # same instant: smaller variant wins
    tie["variant_id"] = smallest
    tie["platform"] = "tie"
    log = pd.concat([log, again, tie], ignore_index=True)
    units = assignments.unit_id.drop_duplicates()
    attributes = pd.DataFrame(
        {"unit_id": units, "country": rng.choice(["DE", "FR", "US"], len(units))}
    ).iloc[: int(len(units) * 0.85)]  # some units have no attributes
    duplicate = attributes.iloc[[0]].assign(country="AA")  # two rows for a unit: smallest wins
    return log, pd.concat([attributes, duplicate], ignore_index=True)


def _load(session: Session) -> tuple[int, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    experiment_id, variant_ids, assignments, events = reference.load(session, seed=21)
    log, attributes = _log_and_attributes(np.random.default_rng(21), assignments, variant_ids)
    session.execute(insert(exposure_log), _records(log))
    session.execute(insert(unit_attributes), _records(attributes))
    session.flush()
    return experiment_id, log, attributes, events


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.to_dict("records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                row[key] = value.to_pydatetime()
            elif isinstance(value, np.integer):
                row[key] = int(value)
    return rows


def test_repeated_exposures_count_once_from_the_first(session: Session) -> None:
    experiment_id, log, _, events = _load(session)
    rows = experiment_statistics(session, experiment_id, exposures=exposure_log)
    expected = reference.reference_statistics(log, events, reference.METRICS, experiment_id)
    reference.assert_matches(rows, expected)
    units = log[log.experiment_id == experiment_id].unit_id.nunique()
    assert sum(r.n for r in rows if r.metric_key == "t_conv") == units < len(log)
    # sliced by a column of the log: the first exposure's value
    rows = experiment_statistics(
        session,
        experiment_id,
        exposures=exposure_log,
        dimension=Dimension(exposure_log.c.platform),
    )
    first = log[log.experiment_id == experiment_id].sort_values(
        ["first_exposure_at", "variant_id"], kind="stable"
    )
    platform = first.drop_duplicates("unit_id").set_index("unit_id").platform
    expected = reference.reference_statistics(
        log, events, reference.METRICS, experiment_id, dimension=platform
    )
    reference.assert_matches(rows, expected)
    assert "android" not in {r.dimension for r in rows}
    assert {r.dimension for r in rows if r.n} >= {"ios", "web"}


def test_slices_by_a_units_attribute_column(session: Session) -> None:
    experiment_id, log, attributes, events = _load(session)
    as_of = reference.START + dt.timedelta(days=4)
    rows = experiment_statistics(
        session, experiment_id, as_of=as_of, dimension=unit_attributes.c.country
    )
    country = attributes.groupby("unit_id").country.min()
    assignments = log[log.platform != "android"].drop_duplicates("unit_id")
    expected = reference.reference_statistics(
        assignments, events, reference.METRICS, experiment_id, as_of=as_of, dimension=country
    )
    reference.assert_matches(rows, expected)
    assert {r.dimension for r in rows} == {"AA", "DE", "FR", "US", None}
