"""What the analysis SQL computes for each metric kind, per unit (layer: experiments.analysis).

A :class:`MetricSpec` is a plain, frozen copy of a ``metrics`` row. :func:`unit_value_columns`
turns it into the aggregate expressions of the per-unit step of the statistics query (one row per
exposed unit, events of the unit joined and aggregated):

- binary: 1 when the unit had at least one ``event_name`` event in its window, else 0;
- count: the number of ``event_name`` events in the window;
- sum: the sum of their ``value`` (an event without a value adds 0);
- ratio: numerator = sum of ``event_name`` values, denominator = sum of ``denominator_event``
  values; on both sides an event without a value counts as 1, so that a ratio of value-less events
  is a ratio of counts (e.g. orders per visit) and a ``order_count`` event may carry 1 or nothing;
- ``cap_value`` (count, sum, and a ratio's numerator) caps each unit's total at the cap
  (winsorizing a heavy tail); the CUPED covariate is capped the same way;
- the window is ``first_exposure_at <= occurred_at < first_exposure_at + window_hours``; the CUPED
  covariate is the same metric over ``first_exposure_at - pre_window_hours <= occurred_at <
  first_exposure_at`` (the pre-period defaults to the metric's own window length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func
from sqlalchemy.sql.elements import ColumnElement

from experiments.analysis.sql_time import shift_hours

KINDS = ("binary", "count", "sum", "ratio")


@dataclass(frozen=True)
class MetricSpec:
    """The parts of a metric definition the SQL needs (mirrors ``experiments.db.Metric``)."""

    key: str
    kind: str
    event_name: str
    window_hours: int
    id: int | None = None
    denominator_event: str | None = None
    cap_value: float | None = None
    cuped: bool = False
    pre_window_hours: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.key!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "ratio" and not self.denominator_event:
            raise ValueError(f"metric {self.key!r}: a ratio metric needs denominator_event")
        if int(self.window_hours) != self.window_hours or self.window_hours <= 0:
            raise ValueError(
                f"metric {self.key!r}: window_hours must be a positive whole number of hours"
            )
        pre = self.pre_window_hours
        if pre is not None and (int(pre) != pre or pre <= 0):
            raise ValueError(
                f"metric {self.key!r}: pre_window_hours must be a positive whole number of hours"
            )

    @classmethod
    def from_model(cls, metric: Any, pre_window_hours: int | None = None) -> MetricSpec:
        """Copy an ``experiments.db.Metric`` (or any object with the same attributes)."""
        return cls(
            id=metric.id,
            key=metric.key,
            kind=metric.kind,
            event_name=metric.event_name,
            window_hours=int(metric.window_hours),
            denominator_event=metric.denominator_event,
            cap_value=None if metric.cap_value is None else float(metric.cap_value),
            cuped=bool(metric.cuped),
            pre_window_hours=pre_window_hours,
        )

    @property
    def has_covariate(self) -> bool:
        """CUPED covariate computed: asked for, and not a ratio (see the package's known gaps)."""
        return self.cuped and self.kind != "ratio"

    @property
    def pre_hours(self) -> int:
        return int(self.pre_window_hours or self.window_hours)

    @property
    def event_names(self) -> tuple[str, ...]:
        if self.kind == "ratio" and self.denominator_event != self.event_name:
            return (self.event_name, str(self.denominator_event))
        return (self.event_name,)


@dataclass(frozen=True)
class EventColumns:
    """The event columns the expressions read (a table or an alias of one)."""

    name: ColumnElement[Any]
    value: ColumnElement[Any]
    occurred_at: ColumnElement[Any]


def _in_window(
    ev: EventColumns, event_name: str, start: ColumnElement[Any], end: ColumnElement[Any]
) -> ColumnElement[bool]:
    return and_(ev.name == event_name, ev.occurred_at >= start, ev.occurred_at < end)


def _capped(total: ColumnElement[Any], cap: float | None) -> ColumnElement[Any]:
    if cap is None:
        return total
    return case((total > cap, cap), else_=total)


def _per_unit(
    spec: MetricSpec,
    ev: EventColumns,
    event_name: str,
    start: ColumnElement[Any],
    end: ColumnElement[Any],
    *,
    side: str,
) -> ColumnElement[Any]:
    hit = _in_window(ev, event_name, start, end)
    if spec.kind == "binary":
        return func.max(case((hit, 1), else_=0))
    if spec.kind == "count":
        return _capped(func.sum(case((hit, 1), else_=0)), spec.cap_value)
    if spec.kind == "sum":
        return _capped(
            func.sum(case((hit, func.coalesce(ev.value, 0.0)), else_=0.0)), spec.cap_value
        )
    total = func.sum(case((hit, func.coalesce(ev.value, 1.0)), else_=0.0))
    return _capped(total, spec.cap_value) if side == "numerator" else total


def unit_value_columns(
    spec: MetricSpec, prefix: str, ev: EventColumns, first_exposure_at: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    """Labelled per-unit aggregates: ``{prefix}_y`` (and ``_x`` covariate, ``_d`` denominator)."""
    post_end = shift_hours(first_exposure_at, spec.window_hours)
    columns: list[ColumnElement[Any]] = [
        _per_unit(spec, ev, spec.event_name, first_exposure_at, post_end, side="numerator").label(
            f"{prefix}_y"
        )
    ]
    if spec.kind == "ratio":
        denominator = _per_unit(
            spec, ev, str(spec.denominator_event), first_exposure_at, post_end, side="denominator"
        )
        columns.append(denominator.label(f"{prefix}_d"))
    if spec.has_covariate:
        pre_start = shift_hours(first_exposure_at, -spec.pre_hours)
        covariate = _per_unit(
            spec, ev, spec.event_name, pre_start, first_exposure_at, side="numerator"
        )
        columns.append(covariate.label(f"{prefix}_x"))
    return columns


def variant_sum_columns(spec: MetricSpec, prefix: str, unit: Any) -> list[ColumnElement[Any]]:
    """Labelled sums over units of ``unit`` (the per-unit subquery): the sufficient statistics."""
    y = unit.c[f"{prefix}_y"]
    columns: list[ColumnElement[Any]] = [
        func.sum(y).label(f"{prefix}_sum"),
        func.sum(y * y).label(f"{prefix}_sum_squares"),
    ]
    if spec.kind == "ratio":
        d = unit.c[f"{prefix}_d"]
        columns += [
            func.sum(d).label(f"{prefix}_den_sum"),
            func.sum(d * d).label(f"{prefix}_den_sum_squares"),
            func.sum(y * d).label(f"{prefix}_sum_of_products"),
        ]
    if spec.has_covariate:
        x = unit.c[f"{prefix}_x"]
        columns += [
            func.sum(x).label(f"{prefix}_pre_sum"),
            func.sum(x * x).label(f"{prefix}_pre_sum_squares"),
            func.sum(y * x).label(f"{prefix}_post_pre_sum_of_products"),
        ]
    return columns
