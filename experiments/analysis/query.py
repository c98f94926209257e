"""The statistics query: SQLAlchemy Core that returns sufficient statistics per variant.

Layer: experiments.analysis (SQLAlchemy Core only; no rows of events ever reach Python). One
statement, in four steps, each readable in the "show SQL" text (:func:`compile_sql`):

1. ``exposure``: one row per unit of the experiment: variant, first exposure, the window bounds
   (``first_exposure_at`` ± hours, computed once per unit) and the dimension value when slicing.
   The ``assignments`` table holds one row per unit by constraint; an exposure log with repeated
   exposures (a warehouse table) is reduced to each unit's first exposure with ``ROW_NUMBER()``,
   so a unit exposed twice counts once, in its first variant (ties: the smaller variant id).
2. ``unit_values``: exposure JOIN events, aggregated per unit: one tally per distinct (event,
   window, reducer), shared by the metrics that read it.
3. ``unit_metrics`` / ``metric_sums``: each unit's metric values (binary flag, caps) and their
   sums, sums of squares and sums of cross products per variant (× dimension).
4. ``unit_counts`` LEFT JOIN ``metric_sums``: ``n`` counts every exposed unit. A unit without
   events adds 0 to every sum, so it only needs counting, and the join in step 2 can be an inner
   join (which lets PostgreSQL hash the smaller side and run in parallel).

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

from experiments.analysis.metrics import (
    EventColumns,
    MetricSpec,
    metric_tallies,
    metric_value,
    tally_column,
)
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
    offsets: Sequence[int],
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
    # window bounds computed once per unit here, not once per joined event row
    columns += [shift_hours(x.first_exposure_at, h).label(bound_name(h)) for h in offsets]
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
        return _cte(select(*columns).select_from(from_).where(*where))
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
    return _cte(select(*keep).where(ranked.c.exposure_rank == 1))


def _cte(query: Select[Any]) -> Any:
    # Read twice (unit counts, event join): PostgreSQL would materialize it, which forbids a
    # parallel plan; inlined, both reads are plain (parallel) scans of the exposure table.
    return query.cte("exposure").prefix_with("NOT MATERIALIZED", dialect="postgresql")


def bound_name(hours: int) -> str:
    return f"at_plus_{hours}h" if hours >= 0 else f"at_minus_{-hours}h"


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
    tallies = sorted({t for spec in metrics for t in metric_tallies(spec).values()})
    offsets = sorted({h for t in tallies for h in (t.start, t.end) if h != 0})
    exposure = _exposure_cte(
        experiment_id,
        exposures,
        as_of,
        dimension,
        dedupe=exposures is not assignments,
        offsets=offsets,
    )
    bounds = {0: exposure.c.first_exposure_at} | {h: exposure.c[bound_name(h)] for h in offsets}

    # Step 2: one row per unit with events, one aggregate per distinct (event, window, reducer).
    # The (inner) join reads only the events some metric uses, between the extreme bounds.
    ev = events.alias("ev")
    ev_columns = EventColumns(name=ev.c.name, value=ev.c.value, occurred_at=ev.c.occurred_at)
    names = sorted({t.event_name for t in tallies})
    join_on = [
        ev.c.unit_id == exposure.c.unit_id,
        ev.c.name.in_(names) if len(names) > 1 else ev.c.name == names[0],
        ev.c.occurred_at >= bounds[min(t.start for t in tallies)],
        ev.c.occurred_at < bounds[max(t.end for t in tallies)],
    ]
    if as_of is not None:
        join_on.append(ev.c.occurred_at < as_of)
    sliced = dimension is not None
    keys = [exposure.c.unit_id, exposure.c.variant_id] + ([exposure.c.dimension] if sliced else [])
    tally_label = {t: f"t{i}" for i, t in enumerate(tallies)}
    unit = (
        select(*keys, *(tally_column(t, ev_columns, bounds).label(tally_label[t]) for t in tallies))
        .select_from(exposure.join(ev, and_(*join_on)))
        .group_by(*keys)
        .subquery("unit_values")
    )
    # Step 3: each unit's metric values (binary flag, caps), summed over units per variant.
    values = []
    for index, spec in enumerate(metrics):
        for role, tally in metric_tallies(spec).items():
            value = metric_value(spec, role, unit.c[tally_label[tally]])
            values.append(value.label(f"{metric_prefix(index)}_{role}"))
    per_unit = select(*_slice_columns(unit, sliced), *values).subquery("unit_metrics")
    sums: list[Any] = []
    for index, spec in enumerate(metrics):
        sums += _variant_sums(spec, metric_prefix(index), per_unit)
    group = _slice_columns(per_unit, sliced)
    metric_sums = select(*group, *sums).group_by(*group).subquery("metric_sums")
    # Step 4: units per variant from the exposures; a unit without events adds 0 to every sum,
    # so the sums of the units with events are the sums over all units.
    group = _slice_columns(exposure, sliced)
    counts = select(*group, func.count().label("n")).group_by(*group).subquery("unit_counts")
    on = [metric_sums.c.variant_id == counts.c.variant_id]
    if sliced:
        on.append(metric_sums.c.dimension.is_not_distinct_from(counts.c.dimension))
    group = _slice_columns(counts, sliced)
    return (
        select(*group, counts.c.n, *(c for c in metric_sums.c if c.name not in SLICE_KEYS))
        .select_from(counts.outerjoin(metric_sums, and_(*on)))
        .order_by(*group)
    )


SLICE_KEYS = ("variant_id", "dimension")


def _slice_columns(selectable: Any, sliced: bool) -> list[Any]:
    return [selectable.c.variant_id] + ([selectable.c.dimension] if sliced else [])


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
