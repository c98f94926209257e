"""Migration 0006 (the cap's spend as a running total) with data in the tables, both backends:
upgrade backfills each strategy's planned spend from its current run's own decisions and the
variant decisions that drew anew (not superseded runs, not repeats); downgrade keeps every row."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from experiments.db import Decision, Experiment, Strategy, Variant, make_engine
from experiments.db.migrate import downgrade, upgrade

BEFORE = "0005_decision_batch_runs"


def _sql(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("strategies")}
    finally:
        engine.dispose()


def test_upgrade_backfills_the_cap_spend_and_downgrade_keeps_every_decision(
    empty_db_url: str,
) -> None:
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    with Session(engine) as session, session.begin():
        strategy = Strategy(key="s", name="s", approved_incentives=[], config={}, batch_run=1)
        idle = Strategy(key="idle", name="idle", approved_incentives=[], config={})
        experiment = Experiment(key="e", name="e", seed="e", design={})
        session.add_all([strategy, idle, experiment])
        session.flush()
        variant = Variant(
            experiment_id=experiment.id,
            position=0,
            key="t",
            name="t",
            weight=1.0,
            strategy_id=strategy.id,
        )
        session.add(variant)
        session.flush()
        rows = [  # decision_id, through the variant, batch_run, reused, cost
            ("old", False, 0, None, 100.0),  # superseded run 0
            ("own-a", False, 1, None, 2.0),
            ("own-b", False, 1, None, 3.0),
            ("drew", True, 1, None, 4.0),  # a variant's new draw of run 1
            ("repeat", True, 1, "own-a", 2.0),  # a variant's repeat of own-a: counted once
            ("drew-old", True, 0, None, 50.0),  # a new draw of the superseded run
        ]
        for decision_id, through, batch_run, reused, cost in rows:
            session.add(
                Decision(
                    decision_id=decision_id,
                    strategy_id=strategy.id,
                    experiment_id=experiment.id if through else None,
                    variant_id=variant.id if through else None,
                    unit_id="u",
                    bucket="exploit",
                    propensity=0.5,
                    expected_cost=cost,
                    batch_run=batch_run,
                    reused_decision_id=reused,
                )
            )
    engine.dispose()
    downgrade(empty_db_url, BEFORE)  # the rows as the schema before 0006 holds them
    assert "planned_spend" not in _columns(empty_db_url)

    upgrade(empty_db_url)
    assert _sql(empty_db_url, "SELECT key, planned_spend FROM strategies ORDER BY id") == [
        ("s", 9.0),
        ("idle", 0.0),
    ]
    downgrade(empty_db_url, BEFORE)
    assert "planned_spend" not in _columns(empty_db_url)
    assert len(_sql(empty_db_url, "SELECT id FROM decisions")) == len(rows)
