"""A strategy's decision ledger: which of its logged decisions are current, the lock that
serializes new ones, and the spend its hard budget cap sees (layer: experiments.services; it only
reads, except the lock's no-op write on SQLite, and never commits).

Logged decisions are never deleted (their propensities feed off-policy evaluation and holdout
measurement later). Each local batch run (``experiments.jobs.strategy_run.run_strategy``), and
each Spark run loaded into the table (``experiments.jobs.spark_load.load_decisions``), takes the
next ``Strategy.batch_run`` number and logs its decisions with it; every decision served after
it, online (``strategy_serving.serve``) or through an experiment's strategy variant
(``strategy_experiments``), carries the number current when it was logged. So:

- the **current ledger** (``own_decisions``) is the strategy's own decisions (no experiment) with
  the current number: the latest batch run's plus the online decisions made after it (before the
  first run, the online decisions so far, run 0). ``latest_decision``, ``strategies.spend_summary``
  (the admin ledger, ``liftlab strategy ledger``) and ``ledger_spend`` read it;
- the **cap** (``cap_spend``) sees the current ledger plus the decisions of the current run that
  the strategy's variants drew anew (``variant_spend``: ``reused_decision_id`` NULL); a variant
  decision that repeated the strategy's own decision is already in the ledger and not counted
  twice. Both ``serve`` and the strategy variants cap against it, so together they never plan
  past the budget;
- history stays queryable: ``own_decisions(strategy, batch_run=n)`` is run ``n``'s ledger (the
  admin decision log's ``?run=``, ``liftlab strategy ledger --run``), ``unit_history`` a unit's
  decisions across runs and experiments (``?unit=``, ``liftlab strategy history``).

A Spark batch run writes its decisions as Parquet (``experiments.jobs.spark_strategy``): until
they are loaded it neither takes a number nor changes the ledger; loaded, they are a batch run
like a local one (same rows, ``source: batch``).

The current number is read by a scalar subquery in the same statement, so a query after
``lock_ledger`` sees a batch run committed while it waited (PostgreSQL, READ COMMITTED).

The spend the cap sees is not summed per decision: ``Strategy.planned_spend`` keeps it as a
running total, written only under the lock: ``start_run`` sets it to a new batch run's planned
spend, ``add_planned`` adds each decision logged after it (online, or a variant's new draw), and
``lock_ledger`` reads it with the budget. A new decision therefore costs the same with an empty
ledger as with a million decisions (``benchmarks/ledger_cap.py``; summing a 1M-decision ledger
took 127 ms on PostgreSQL and 432 ms on SQLite per decision, under the lock). ``cap_spend`` is the
same number counted from the rows, for checks (the tests assert the two agree) and the
migration's backfill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from experiments.db import Decision, Strategy, take_sqlite_write_lock
from experiments.errors import ValidationError


def current_run(strategy: Strategy) -> Any:
    """The strategy's current batch run number as stored now (a scalar subquery)."""
    return select(Strategy.batch_run).where(Strategy.id == strategy.id).scalar_subquery()


def check_run(strategy: Strategy, batch_run: Any, field: str = "batch_run") -> int:
    """``batch_run`` as a run number of ``strategy`` (0 to its latest), else ``ValidationError``
    naming ``field``."""
    if isinstance(batch_run, str) and batch_run.strip().isdigit():
        batch_run = int(batch_run)
    if isinstance(batch_run, bool) or not isinstance(batch_run, int):
        raise ValidationError(field, f"{batch_run!r} is not a run number; give a whole number")
    if not 0 <= batch_run <= strategy.batch_run:
        raise ValidationError(
            field,
            f"strategy {strategy.key!r} has batch runs 0 to {strategy.batch_run}; give one of them",
        )
    return batch_run


def own_decisions(strategy: Strategy, batch_run: int | None = None) -> tuple[Any, ...]:
    """The where-clauses of the strategy's own decisions of run ``batch_run`` (default: the
    current ledger). Decisions served through an experiment are that experiment's."""
    run = current_run(strategy) if batch_run is None else batch_run
    return (
        Decision.strategy_id == strategy.id,
        Decision.batch_run == run,
        Decision.experiment_id.is_(None),
    )


def latest_decision(session: Session, strategy: Strategy, unit_id: str) -> Decision | None:
    """The unit's latest decision in the strategy's current ledger (not an experiment's)."""
    return session.scalar(
        select(Decision)
        .where(*own_decisions(strategy), Decision.unit_id == unit_id)
        .order_by(Decision.id.desc())
        .limit(1)
    )


def unit_history(session: Session, strategy: Strategy, unit_id: str) -> list[Decision]:
    """Every decision of ``strategy`` logged for the unit, newest first: superseded runs, online
    decisions and those served through its experiment variants."""
    return list(
        session.scalars(
            select(Decision)
            .where(Decision.strategy_id == strategy.id, Decision.unit_id == unit_id)
            .order_by(Decision.id.desc())
        )
    )


@dataclass(frozen=True)
class LedgerLock:
    """What ``lock_ledger`` read under the lock: the budget, the current batch run and the
    spend the cap sees (``Strategy.planned_spend``)."""

    budget: float
    batch_run: int
    planned_spend: float


def lock_ledger(session: Session, strategy: Strategy) -> LedgerLock:
    """Serialize the strategy's new decisions (and batch runs) until the transaction ends
    (``experiments.services.strategy_serving``); returns its budget, run and planned spend as
    stored now.

    ``strategy.config`` is reloaded as stored now too, so that a caller that writes the config
    under the lock (a batch run, a paced day, a pacing change) starts from the latest one and
    never overwrites what another transaction wrote while this one waited or scored."""
    row = Strategy.id == strategy.id
    columns = select(
        Strategy.budget, Strategy.batch_run, Strategy.planned_spend, Strategy.config
    ).where(row)
    if session.get_bind().dialect.name != "postgresql":
        take_sqlite_write_lock(session, Strategy, strategy.id)
        budget, batch_run, planned, config = session.execute(columns).one()
    else:
        budget, batch_run, planned, config = session.execute(columns.with_for_update()).one()
    set_committed_value(strategy, "config", config)
    return LedgerLock(float(budget), int(batch_run), float(planned))


def start_run(session: Session, strategy: Strategy, lock: LedgerLock, spend: float) -> int:
    """Number the strategy's next batch run (after ``lock_ledger``) and make ``spend``, the
    run's planned spend, the spend the cap sees; returns the new run number."""
    strategy.batch_run = lock.batch_run + 1
    strategy.planned_spend = float(spend)
    session.flush()
    return strategy.batch_run


def add_planned(session: Session, strategy: Strategy, cost: float) -> None:
    """Add a newly logged decision's expected cost to the spend the cap sees (after
    ``lock_ledger``, in the transaction that logs the decision)."""
    if cost:
        session.execute(
            update(Strategy)
            .where(Strategy.id == strategy.id)
            # updated_at kept (no onupdate): a decision does not change the strategy
            .values(
                planned_spend=Strategy.planned_spend + float(cost), updated_at=Strategy.updated_at
            )
            .execution_options(synchronize_session=False)
        )
        session.expire(strategy, ["planned_spend"])


def _sum_cost(session: Session, *where: Any) -> float:
    total = session.scalar(
        select(func.coalesce(func.sum(Decision.expected_cost), 0.0)).where(*where)
    )
    return float(total or 0.0)


def ledger_spend(session: Session, strategy: Strategy) -> float:
    """Planned spend of the current ledger (``strategies.spend_summary``'s ``planned_spend``)."""
    return _sum_cost(session, *own_decisions(strategy))


def variant_spend(session: Session, strategy: Strategy) -> float:
    """Planned spend of the current run's decisions that the strategy's experiment variants drew
    anew (those that repeated an own decision are in the ledger already)."""
    return _sum_cost(
        session,
        Decision.strategy_id == strategy.id,
        Decision.batch_run == current_run(strategy),
        Decision.experiment_id.is_not(None),
        Decision.reused_decision_id.is_(None),
    )


def cap_spend(session: Session, strategy: Strategy) -> float:
    """What the hard cap counts as planned, counted from the rows: the current ledger plus new
    variant draws (``Strategy.planned_spend`` keeps the same number as a running total)."""
    return ledger_spend(session, strategy) + variant_spend(session, strategy)
