"""Sufficient statistics of an experiment, computed inside the database (layer: experiments.analysis).

:func:`experiment_statistics` reads the (small) experiment, variant and metric definitions, runs
the one statistics query of :mod:`experiments.analysis.query` and returns one frozen
:class:`MetricStatistics` per variant × metric (× dimension value). ``to_statistic()`` turns a row
into the ``experiments.stats`` dataclass the tests take. :func:`experiment_statistics_sql` gives
the SQL text of the same query for the admin's "show SQL" and the report appendix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from experiments.analysis.metrics import MetricSpec
from experiments.analysis.query import Dimension, build_statistics_query, compile_sql, metric_prefix
from experiments.db import Experiment, ExperimentMetric, Metric, Variant
from experiments.errors import NotFoundError, ValidationError
from experiments.stats import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    Statistic,
)


@dataclass(frozen=True)
class MetricStatistics:
    """Sufficient statistics of one metric in one variant (and one dimension slice).

    ``sum``/``sum_squares`` are over units of the per-unit value (the numerator for a ratio).
    CUPED rows carry the pre-period covariate's ``pre_sum``, ``pre_sum_squares`` and
    ``post_pre_sum_of_products``; ratio rows the denominator's sums and ``sum_of_products``
    (numerator × denominator). Fields that do not apply are ``None``.
    """

    experiment_id: int
    variant_id: int
    variant_key: str
    metric_id: int | None
    metric_key: str
    kind: str
    role: str | None
    dimension: Any
    n: int
    sum: float
    sum_squares: float
    pre_sum: float | None = None
    pre_sum_squares: float | None = None
    post_pre_sum_of_products: float | None = None
    denominator_sum: float | None = None
    denominator_sum_squares: float | None = None
    sum_of_products: float | None = None

    @property
    def has_covariate(self) -> bool:
        return self.pre_sum is not None

    def to_statistic(self, *, cuped: bool = True) -> Statistic:
        """The ``experiments.stats`` input: proportion, sample mean, ratio or CUPED statistic."""
        if self.kind == "ratio":
            return RatioStatistic(
                numerator=SampleMeanStatistic(self.n, self.sum, self.sum_squares),
                denominator=SampleMeanStatistic(
                    self.n, _num(self.denominator_sum), _num(self.denominator_sum_squares)
                ),
                sum_of_products=_num(self.sum_of_products),
            )
        if cuped and self.has_covariate:
            return RegressionAdjustedStatistic(
                n=self.n,
                post_sum=self.sum,
                post_sum_squares=self.sum_squares,
                pre_sum=_num(self.pre_sum),
                pre_sum_squares=_num(self.pre_sum_squares),
                post_pre_sum_of_products=_num(self.post_pre_sum_of_products),
            )
        if self.kind == "binary":
            return ProportionStatistic(n=self.n, sum=self.sum)
        return SampleMeanStatistic(n=self.n, sum=self.sum, sum_squares=self.sum_squares)


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)


@dataclass(frozen=True)
class _Plan:
    experiment_id: int
    variants: tuple[tuple[int, str], ...]
    metrics: tuple[MetricSpec, ...]
    roles: tuple[str | None, ...]
    query: Select[Any] | None


def _plan(
    db: Connection | Session,
    experiment_id: int,
    metric_ids: Sequence[int] | None,
    as_of: dt.datetime | None,
    dimension: Dimension | ColumnElement[Any] | None,
    pre_window_hours: int | None,
    exposures: FromClause | None,
) -> _Plan:
    if pre_window_hours is not None and (
        isinstance(pre_window_hours, bool)
        or int(pre_window_hours) != pre_window_hours
        or pre_window_hours <= 0
    ):
        raise ValidationError("pre_window_hours", "give a positive whole number of hours")
    if db.scalar(select(Experiment.id).where(Experiment.id == experiment_id)) is None:
        raise NotFoundError("experiment", experiment_id)
    variants = tuple(
        (int(row.id), str(row.key))
        for row in db.execute(
            select(Variant.id, Variant.key)
            .where(Variant.experiment_id == experiment_id)
            .order_by(Variant.position)
        )
    )
    linked: dict[int, str] = {
        int(metric_id): str(role)
        for metric_id, role in db.execute(
            select(ExperimentMetric.metric_id, ExperimentMetric.role)
            .where(ExperimentMetric.experiment_id == experiment_id)
            .order_by(ExperimentMetric.id)
        )
    }
    ids = list(linked) if metric_ids is None else [int(i) for i in metric_ids]
    columns = (
        Metric.id,
        Metric.key,
        Metric.kind,
        Metric.event_name,
        Metric.window_hours,
        Metric.denominator_event,
        Metric.cap_value,
        Metric.cuped,
    )
    found = {m.id: m for m in db.execute(select(*columns).where(Metric.id.in_(ids)))}
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValidationError(
            "metric_ids", f"no metric with id {unknown[0]}; pass ids of existing metrics"
        )
    ordered = sorted(set(ids), key=ids.index)
    specs = tuple(MetricSpec.from_model(found[i], pre_window_hours) for i in ordered)
    roles = tuple(linked.get(i) for i in ordered)
    query = (
        build_statistics_query(
            experiment_id, specs, as_of=as_of, dimension=dimension, exposures=exposures
        )
        if specs
        else None
    )
    return _Plan(experiment_id, variants, specs, roles, query)


def _row(
    plan: _Plan, index: int, variant: tuple[int, str], value: Any, data: Any
) -> MetricStatistics:
    spec, p = plan.metrics[index], metric_prefix(index)

    def pick(name: str, applies: bool) -> float | None:
        return _num(data.get(f"{p}_{name}")) if applies else None

    ratio, cuped = spec.kind == "ratio", spec.has_covariate
    return MetricStatistics(
        experiment_id=plan.experiment_id,
        variant_id=variant[0],
        variant_key=variant[1],
        metric_id=spec.id,
        metric_key=spec.key,
        kind=spec.kind,
        role=plan.roles[index],
        dimension=value,
        n=int(data.get("n") or 0),
        sum=_num(data.get(f"{p}_sum")),
        sum_squares=_num(data.get(f"{p}_sum_squares")),
        pre_sum=pick("pre_sum", cuped),
        pre_sum_squares=pick("pre_sum_squares", cuped),
        post_pre_sum_of_products=pick("post_pre_sum_of_products", cuped),
        denominator_sum=pick("den_sum", ratio),
        denominator_sum_squares=pick("den_sum_squares", ratio),
        sum_of_products=pick("sum_of_products", ratio),
    )


def _rows(plan: _Plan, result_rows: Sequence[Any], sliced: bool) -> list[MetricStatistics]:
    by_key = {
        (row.variant_id, row.dimension if sliced else None): row._mapping for row in result_rows
    }
    values = sorted({key[1] for key in by_key}, key=lambda v: (v is None, str(v))) or [None]
    return [
        _row(plan, index, variant, value, by_key.get((variant[0], value), {}))
        for index in range(len(plan.metrics))
        for variant in plan.variants
        for value in values
    ]


def experiment_statistics(
    connection_or_session: Connection | Session,
    experiment_id: int,
    metric_ids: Sequence[int] | None = None,
    as_of: dt.datetime | None = None,
    dimension: Dimension | ColumnElement[Any] | None = None,
    *,
    pre_window_hours: int | None = None,
    exposures: FromClause | None = None,
) -> list[MetricStatistics]:
    """Sufficient statistics per variant × metric (× dimension value), computed by the database.

    ``metric_ids`` defaults to the experiment's linked metrics (``experiment_metrics``), in link
    order. ``as_of`` ignores exposures and events at or after it. ``dimension`` slices by a column
    (see :class:`Dimension`). Every variant appears for every metric (and dimension value seen),
    with zeros when it has no units. Raises ``NotFoundError`` for an unknown experiment and
    ``ValidationError`` naming ``metric_ids`` for an unknown metric.
    """
    plan = _plan(
        connection_or_session,
        experiment_id,
        metric_ids,
        as_of,
        dimension,
        pre_window_hours,
        exposures,
    )
    if plan.query is None:
        return []
    result = connection_or_session.execute(plan.query).all()
    return _rows(plan, result, sliced=dimension is not None)


def experiment_statistics_sql(
    connection_or_session: Connection | Session,
    experiment_id: int,
    metric_ids: Sequence[int] | None = None,
    as_of: dt.datetime | None = None,
    dimension: Dimension | ColumnElement[Any] | None = None,
    *,
    pre_window_hours: int | None = None,
    exposures: FromClause | None = None,
) -> str:
    """The SQL text :func:`experiment_statistics` runs, for this connection's dialect."""
    plan = _plan(
        connection_or_session,
        experiment_id,
        metric_ids,
        as_of,
        dimension,
        pre_window_hours,
        exposures,
    )
    if plan.query is None:
        return ""
    return compile_sql(plan.query, connection_or_session)
