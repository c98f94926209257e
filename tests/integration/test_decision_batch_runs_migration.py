"""Migration 0005 (batch runs supersede decisions) with data in the tables, both backends: upgrade
puts every strategy and its own decisions at run 0 and leaves experiment decisions outside the
cap; downgrade keeps every row, and refuses while a later run has superseded decisions."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from experiments.db import Decision, Experiment, Strategy, Variant, make_engine
from experiments.db.migrate import downgrade, upgrade

BEFORE = "0004_model_run_provenance"


def _columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _rows(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def test_upgrade_numbers_the_ledger_and_downgrade_never_drops_a_decision(
    empty_db_url: str,
) -> None:
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    with Session(engine) as session, session.begin():
        strategy = Strategy(key="s", name="s", approved_incentives=[], config={})
        experiment = Experiment(key="e", name="e", seed="e", design={})
        session.add_all([strategy, experiment])
        session.flush()
        control = Variant(experiment_id=experiment.id, position=0, key="c", name="c", weight=0.5)
        targeted = Variant(
            experiment_id=experiment.id,
            position=1,
            key="t",
            name="t",
            weight=0.5,
            strategy_id=strategy.id,
        )
        session.add_all([control, targeted])
        session.flush()
        for decision_id, strategy_id, experiment_id, variant_id, batch_run in (
            ("batch", strategy.id, None, None, 0),
            ("through-strategy-variant", strategy.id, experiment.id, targeted.id, 0),
            ("through-control", None, experiment.id, control.id, None),
        ):
            session.add(
                Decision(
                    decision_id=decision_id,
                    strategy_id=strategy_id,
                    experiment_id=experiment_id,
                    variant_id=variant_id,
                    unit_id="u",
                    bucket="exploit",
                    propensity=0.5,
                    batch_run=batch_run,
                )
            )
    engine.dispose()

    downgrade(empty_db_url, BEFORE)  # nothing superseded: every row kept, the columns dropped
    assert not {"batch_run", "reused_decision_id"} & _columns(empty_db_url, "decisions")
    assert "batch_run" not in _columns(empty_db_url, "strategies")
    assert len(_rows(empty_db_url, "SELECT id FROM decisions")) == 3

    upgrade(empty_db_url)  # the rows of the old schema
    assert _rows(empty_db_url, "SELECT batch_run FROM strategies") == [(0,)]
    assert _rows(
        empty_db_url,
        "SELECT decision_id, batch_run, reused_decision_id FROM decisions ORDER BY decision_id",
    ) == [
        ("batch", 0, None),  # the strategy's own: its current ledger
        ("through-control", None, None),
        ("through-strategy-variant", None, None),  # served before the cap: stays outside it
    ]

    engine = make_engine(empty_db_url)
    with Session(engine) as session, session.begin():  # a second batch run supersedes run 0
        strategy = session.scalars(select(Strategy)).one()
        strategy.batch_run = 1
        session.add(
            Decision(
                decision_id="batch-1",
                strategy_id=strategy.id,
                unit_id="u",
                bucket="exploit",
                propensity=0.5,
                batch_run=1,
            )
        )
    engine.dispose()
    with pytest.raises(RuntimeError, match="1 decisions were superseded"):
        downgrade(empty_db_url, BEFORE)
    assert {"batch_run", "reused_decision_id"} <= _columns(empty_db_url, "decisions")
    assert len(_rows(empty_db_url, "SELECT id FROM decisions")) == 4
    assert _rows(empty_db_url, "SELECT batch_run FROM strategies") == [(1,)]
