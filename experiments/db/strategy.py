"""Uplift model runs, strategies and their logged decisions (layer: experiments.db)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from experiments.db.base import Base, BigId, utcnow


class ModelRun(Base):
    __tablename__ = "model_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL")
    )
    architecture: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="running")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifact_path: Mapped[str | None] = mapped_column(String(500))
    promoted: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))  # OS user or --user
    # sha256 of the training frame (experiments.jobs.fingerprint): same data, same fingerprint
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class Strategy(Base):
    """Who gets which incentive: model, approved arms, budget, holdout and exploration shares."""

    __tablename__ = "strategies"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'paused')", name="status"),
        CheckConstraint("objective IN ('profit', 'revenue', 'orders')", name="objective"),
        CheckConstraint("budget >= 0", name="budget_nonnegative"),
        CheckConstraint("holdout_share >= 0 AND holdout_share < 1", name="holdout_range"),
        CheckConstraint("explore_share >= 0 AND explore_share < 1", name="explore_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    objective: Mapped[str] = mapped_column(String(16), default="profit")
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id"))
    source_experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL")
    )
    approved_incentives: Mapped[list[Any]] = mapped_column(default=list)
    fallback_incentive_id: Mapped[int | None] = mapped_column(ForeignKey("incentives.id"))
    budget: Mapped[float] = mapped_column(default=0.0)
    budget_period_days: Mapped[int] = mapped_column(default=30)
    holdout_share: Mapped[float] = mapped_column(default=0.05)
    explore_share: Mapped[float] = mapped_column(default=0.05)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # batch runs that logged decisions so far (local runs and loaded Spark runs; 0: none yet);
    # the current ledger is the decisions carrying this number (``strategy_ledger``)
    batch_run: Mapped[int] = mapped_column(default=0, server_default="0")
    # the spend the hard cap sees, kept as a running total under the ledger lock
    # (experiments.services.strategy_ledger): the current batch run's planned spend plus every
    # decision logged after it, so a new decision reads one row instead of summing the ledger
    planned_spend: Mapped[float] = mapped_column(default=0.0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Decision(Base):
    """One logged decision: the arm, its bucket and the probability with which it was chosen.

    Made by a strategy (``strategy_id``), or served through an experiment whose variants are
    strategies (``experiment_id``, ``variant_id``; ``strategy_id`` set when the variant is one).
    Rows are never deleted by a later run: ``batch_run`` is the strategy's batch run whose ledger
    the decision belongs to (the run that wrote it, or the latest run when it was served online or
    through a strategy variant), so a new run supersedes the earlier rows instead of deleting them.
    ``reused_decision_id``: for a strategy variant's decision, the strategy's own logged decision
    it repeats (already in the strategy's ledger), else NULL (a new draw, counted by the cap).
    """

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint("bucket IN ('holdout', 'explore', 'exploit')", name="bucket"),
        CheckConstraint("propensity > 0 AND propensity <= 1", name="propensity_range"),
        CheckConstraint(
            "strategy_id IS NOT NULL OR experiment_id IS NOT NULL", name="strategy_or_experiment"
        ),
        CheckConstraint(
            "strategy_id IS NULL OR experiment_id IS NOT NULL OR batch_run IS NOT NULL",
            name="own_batch_run",
        ),
        Index("ix_decisions_strategy_at", "strategy_id", "decided_at"),
        Index("ix_decisions_strategy_run_unit", "strategy_id", "batch_run", "unit_id"),
        Index("ix_decisions_unit", "unit_id"),
        Index("ix_decisions_experiment_unit", "experiment_id", "unit_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(64), unique=True)
    strategy_id: Mapped[int | None] = mapped_column(ForeignKey("strategies.id", ondelete="CASCADE"))
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE")
    )
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    unit_id: Mapped[str] = mapped_column(String(200))
    incentive_id: Mapped[int | None] = mapped_column(ForeignKey("incentives.id"))
    bucket: Mapped[str] = mapped_column(String(16))
    propensity: Mapped[float]
    expected_value: Mapped[float] = mapped_column(default=0.0)
    expected_cost: Mapped[float] = mapped_column(default=0.0)
    context: Mapped[dict[str, Any] | None]
    batch_run: Mapped[int | None]
    reused_decision_id: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
