"""Experiments, their variants and metrics, first exposures, result snapshots (layer: experiments.db)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from experiments.db.base import Base, BigId, utcnow

STATUSES = ("draft", "running", "stopped", "concluded", "archived")
METRIC_ROLES = ("primary", "secondary", "guardrail")


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'running', 'stopped', 'concluded', 'archived')", name="status"
        ),
        CheckConstraint("coverage >= 0 AND coverage <= 1", name="coverage_range"),
        CheckConstraint(
            "namespace_start >= 0 AND namespace_end <= 1 AND namespace_start < namespace_end",
            name="namespace_range",
        ),
        CheckConstraint("hash_version IN (1, 2)", name="hash_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    seed: Mapped[str] = mapped_column(String(100))
    hash_version: Mapped[int] = mapped_column(default=2)
    hash_attribute: Mapped[str] = mapped_column(String(100), default="id")
    coverage: Mapped[float] = mapped_column(default=1.0)
    namespace: Mapped[str | None] = mapped_column(String(100))
    namespace_start: Mapped[float] = mapped_column(default=0.0)
    namespace_end: Mapped[float] = mapped_column(default=1.0)
    condition: Mapped[dict[str, Any] | None]
    forced: Mapped[dict[str, Any] | None]
    design: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[dt.datetime | None]
    stopped_at: Mapped[dt.datetime | None]
    concluded_at: Mapped[dt.datetime | None]
    # the key (not an FK) avoids a foreign-key cycle experiments <-> variants; keys are immutable
    winner_variant_key: Mapped[str | None] = mapped_column(String(100))

    variants: Mapped[list[Variant]] = relationship(
        back_populates="experiment",
        order_by="Variant.position",
        foreign_keys="Variant.experiment_id",
        cascade="all, delete-orphan",
    )
    metric_links: Mapped[list[ExperimentMetric]] = relationship(
        cascade="all, delete-orphan", order_by="ExperimentMetric.id"
    )


class Variant(Base):
    """One arm: an incentive, or a strategy (its per-user decisions), or neither (the control)."""

    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("experiment_id", "position"),
        UniqueConstraint("experiment_id", "key"),
        CheckConstraint("weight >= 0 AND weight <= 1", name="weight_range"),
        CheckConstraint("incentive_id IS NULL OR strategy_id IS NULL", name="one_treatment"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    position: Mapped[int]
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    weight: Mapped[float]
    incentive_id: Mapped[int | None] = mapped_column(ForeignKey("incentives.id"))
    # a variant whose users get what this strategy decides for them (strategies A/B-tested)
    strategy_id: Mapped[int | None] = mapped_column(ForeignKey("strategies.id"))

    experiment: Mapped[Experiment] = relationship(
        back_populates="variants", foreign_keys=[experiment_id]
    )


class ExperimentMetric(Base):
    __tablename__ = "experiment_metrics"
    __table_args__ = (
        UniqueConstraint("experiment_id", "metric_id"),
        CheckConstraint("role IN ('primary', 'secondary', 'guardrail')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id"))
    role: Mapped[str] = mapped_column(String(16))


class Assignment(Base):
    """A unit's first exposure to an experiment: it wins forever (sticky assignment)."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("experiment_id", "unit_id"),
        Index("ix_assignments_experiment_variant", "experiment_id", "variant_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    unit_id: Mapped[str] = mapped_column(String(200))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    first_exposure_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ResultSnapshot(Base):
    """One refresh of an experiment's results, kept so that sequential p-values are running minima."""

    __tablename__ = "result_snapshots"
    __table_args__ = (Index("ix_result_snapshots_experiment_at", "experiment_id", "computed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    n_units: Mapped[int] = mapped_column(default=0)
    results: Mapped[dict[str, Any]]
    sql: Mapped[str | None] = mapped_column(Text)
