"""The statistics query: SQLAlchemy Core that returns sufficient statistics per variant.

Layer: experiments.analysis (SQLAlchemy Core only; no rows of events ever reach Python). The query
has three steps, each readable in the "show SQL" text (:func:`compile_sql`):

1. ``exposure``: one row per unit of the experiment, its variant and first exposure (and the
   dimension value when slicing). The ``assignments`` table holds one row per unit by constraint;
   an exposure log with repeated exposures (a warehouse table) is reduced to each unit's first
   exposure with ``ROW_NUMBER()``, so a unit exposed twice counts once, in its first variant.
2. ``unit_values``: exposure LEFT JOIN events, aggregated per unit: one value per metric (and its
   CUPED covariate / ratio denominator). The LEFT JOIN keeps units without events as zeros.
3. the outer ``SELECT``: per variant (× dimension), ``COUNT(*)`` units and sums, sums of squares
   and sums of cross products of the per-unit values.

``as_of`` (a refresh time) keeps exposures and events strictly before it, so a window still open
is truncated at the refresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    func,
    select,
)
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import Session

from experiments.analysis.metrics import EventColumns, MetricSpec, unit_value_columns
from experiments.analysis.metrics import variant_sum_columns as _variant_sums
from experiments.analysis.sql_time import shift_hours
from experiments.db import Assignment, Event

EXPOSURE_COLUMNS = ("experiment_id", "unit_id", "variant_id", "first_exposure_at")


@dataclass(frozen=True)
class Dimension:
    """Slice results by ``column``, a column of a table keyed by unit.

    ``column`` belongs either to the exposure table (e.g. a property of the exposure) or to a
    units/attributes table joined on ``unit_key`` (default: that table's ``unit_id`` column). The
    attributes table may hold several rows per unit: the smallest value is used, so a unit is
    never counted twice. Units without an attributes row fall in the ``None`` slice.
    """

    column: ColumnElement[Any]
    unit_key: ColumnElement[Any] | None = None


def metric_prefix(index: int) -> str:
    return f"m{index}"


def _exposure_cte(
    experiment_id: int,
    exposures: FromClause,
    as_of: dt.datetime | None,
    dimension: Dimension | None,
    dedupe: bool,
) -> Any:
    missing = [name for name in EXPOSURE_COLUMNS if name not in exposures.c]
    if missing:
        raise ValueError(
            f"exposures: the table lacks column(s) {', '.join(missing)}; give a table or "
            f"subquery with {', '.join(EXPOSURE_COLUMNS)}"
        )
    x = exposures.c
    where = [x.experiment_id == experiment_id]
    if as_of is not None:
        where.append(x.first_exposure_at < as_of)
    columns: list[Any] = [x.unit_id, x.variant_id, x.first_exposure_at]
    from_: Any = exposures
    if dimension is not None:
        table = dimension.column.table  # type: ignore[attr-defined]
        if table is exposures:
            columns.append(dimension.column.label("dimension"))
        else:
            key = dimension.unit_key if dimension.unit_key is not None else table.c.unit_id
            attributes = (
                select(key.label("unit_id"), func.min(dimension.column).label("dimension"))
                .group_by(key)
                .subquery("unit_attributes")
            )
            from_ = exposures.outerjoin(attributes, attributes.c.unit_id == x.unit_id)
            columns.append(attributes.c.dimension)
    if not dedupe:
        return select(*columns).select_from(from_).where(*where).cte("exposure")
    rank = func.row_number().over(
        partition_by=x.unit_id, order_by=(x.first_exposure_at, x.variant_id)
    )
    ranked = (
        select(*columns, rank.label("exposure_rank"))
        .select_from(from_)
        .where(*where)
        .subquery("ranked_exposure")
    )
    keep = [c for c in ranked.c if c.name != "exposure_rank"]
    return select(*keep).where(ranked.c.exposure_rank == 1).cte("exposure")


def build_statistics_query(
    experiment_id: int,
    metrics: Sequence[MetricSpec],
    *,
    as_of: dt.datetime | None = None,
    dimension: Dimension | ColumnElement[Any] | None = None,
    exposures: FromClause | None = None,
    events: FromClause | None = None,
) -> Select[Any]:
    """The query; one row per variant (× dimension) with ``n`` and ``m{i}_*`` sums per metric.

    ``exposures`` defaults to the ``assignments`` table and ``events`` to ``events``; a warehouse
    may pass its own tables with the same column names.
    """
    if not metrics:
        raise ValueError("metrics: give at least one metric to compute")
    if dimension is not None and not isinstance(dimension, Dimension):
        dimension = Dimension(dimension)
    assignments = Assignment.__table__
    exposures = assignments if exposures is None else exposures
    events = Event.__table__ if events is None else events
    exposure = _exposure_cte(
        experiment_id, exposures, as_of, dimension, dedupe=exposures is not assignments
    )

    ev = events.alias("ev")
    ev_columns = EventColumns(name=ev.c.name, value=ev.c.value, occurred_at=ev.c.occurred_at)
    first = exposure.c.first_exposure_at
    # The join reads only the events any metric may use: their names, from the earliest
    # pre-period start to the latest window end (per-metric windows are applied in CASE).
    post_hours = max(spec.window_hours for spec in metrics)
    pre_hours = max((spec.pre_hours for spec in metrics if spec.has_covariate), default=0)
    names = sorted({name for spec in metrics for name in spec.event_names})
    join_on = [
        ev.c.unit_id == exposure.c.unit_id,
        ev.c.name.in_(names) if len(names) > 1 else ev.c.name == names[0],
        ev.c.occurred_at >= (shift_hours(first, -pre_hours) if pre_hours else first),
        ev.c.occurred_at < shift_hours(first, post_hours),
    ]
    if as_of is not None:
        join_on.append(ev.c.occurred_at < as_of)
    keys = [exposure.c.unit_id, exposure.c.variant_id]
    if dimension is not None:
        keys.append(exposure.c.dimension)
    values: list[Any] = []
    for index, spec in enumerate(metrics):
        values += unit_value_columns(spec, metric_prefix(index), ev_columns, first)
    unit = (
        select(*keys, *values)
        .select_from(exposure.outerjoin(ev, and_(*join_on)))
        .group_by(*keys)
        .subquery("unit_values")
    )

    group = [unit.c.variant_id]
    if dimension is not None:
        group.append(unit.c.dimension)
    sums: list[Any] = []
    for index, spec in enumerate(metrics):
        sums += _variant_sums(spec, metric_prefix(index), unit)
    return select(*group, func.count().label("n"), *sums).group_by(*group).order_by(*group)


def _dialect_of(target: Any) -> Dialect:
    if isinstance(target, Dialect):
        return target
    if isinstance(target, str):
        from sqlalchemy.dialects import registry

        return registry.load(target)()  # type: ignore[no-any-return]
    if isinstance(target, Session):
        return target.get_bind().dialect
    if isinstance(target, Connection | Engine):
        return target.dialect
    raise TypeError(
        "dialect: give a dialect name ('postgresql', 'sqlite'), a Dialect, an Engine, a "
        f"Connection or a Session, not {type(target).__name__}"
    )


def compile_sql(query: Any, dialect: Any) -> str:
    """The exact SQL text of ``query`` for ``dialect``, parameters rendered inline ("show SQL")."""
    compiled = query.compile(dialect=_dialect_of(dialect), compile_kwargs={"literal_binds": True})
    return str(compiled)
