"""Migration 0002 (strategies as experiment variants) with data in the tables, both backends:
downgrade keeps every strategy decision and drops only those the old schema cannot hold."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from experiments.db import Decision, Experiment, Strategy, Variant, make_engine
from experiments.db.migrate import downgrade, upgrade


def _columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_downgrade_keeps_strategy_decisions_and_upgrade_restores_the_columns(
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
        for decision_id, strategy_id, experiment_id, variant_id in (
            ("batch", strategy.id, None, None),
            ("through-strategy-variant", strategy.id, experiment.id, targeted.id),
            ("through-control", None, experiment.id, control.id),
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
                    batch_run=0 if experiment_id is None else None,  # head's ledger (0005)
                )
            )
    engine.dispose()
    assert {"strategy_id"} <= _columns(empty_db_url, "variants")

    downgrade(empty_db_url, "0001_baseline")
    assert "strategy_id" not in _columns(empty_db_url, "variants")
    assert not {"experiment_id", "variant_id"} & _columns(empty_db_url, "decisions")
    engine = make_engine(empty_db_url)
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT decision_id FROM decisions ORDER BY decision_id"))
        assert [row[0] for row in kept] == ["batch", "through-strategy-variant"]
        variants = connection.execute(text("SELECT key FROM variants ORDER BY position"))
        assert [row[0] for row in variants] == ["c", "t"]
    engine.dispose()

    upgrade(empty_db_url)
    assert {"experiment_id", "variant_id"} <= _columns(empty_db_url, "decisions")
