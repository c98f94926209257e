"""What the analysis SQL computes for each metric kind, per unit (layer: experiments.analysis).

A :class:`MetricSpec` is a plain, frozen copy of a ``metrics`` row. Each metric reads one or more
:class:`Tally` — per-unit aggregates over the unit's joined events (count of events, or sum of
values, of one event name in one window) — shared between metrics that need the same one, so
the database evaluates each condition once per joined row. The unit's metric value is then:

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


@dataclass(frozen=True, order=True)
class Tally:
    """One per-unit aggregate over the joined events, shared by every metric that needs it.

    ``reducer`` count: number of events; sum0: sum of values (no value = 0); sum1: sum of values
    (no value = 1). The window is ``[start, end)`` hours relative to the first exposure.
    """

    event_name: str
    start: int
    end: int
    reducer: str


def _tally(spec: MetricSpec, event_name: str, start: int, end: int) -> Tally:
    if spec.kind in ("binary", "count"):
        return Tally(event_name, start, end, "count")
    return Tally(event_name, start, end, "sum0" if spec.kind == "sum" else "sum1")


def metric_tallies(spec: MetricSpec) -> dict[str, Tally]:
    """The aggregates a metric reads: ``y`` (value), ``d`` (ratio denominator), ``x`` (CUPED)."""
    tallies = {"y": _tally(spec, spec.event_name, 0, spec.window_hours)}
    if spec.kind == "ratio":
        den = str(spec.denominator_event)
        tallies["d"] = _tally(spec, den, 0, spec.window_hours)
    if spec.has_covariate:
        tallies["x"] = _tally(spec, spec.event_name, -spec.pre_hours, 0)
    return tallies


def tally_column(
    tally: Tally, ev: EventColumns, bounds: dict[int, ColumnElement[Any]]
) -> ColumnElement[Any]:
    """``SUM(CASE WHEN <event in window> THEN 1 | value ELSE 0 END)``; ``bounds[h]`` is the
    timestamp ``first_exposure_at + h hours`` (``bounds[0]`` the first exposure itself)."""
    hit = and_(
        ev.name == tally.event_name,
        ev.occurred_at >= bounds[tally.start],
        ev.occurred_at < bounds[tally.end],
    )
    if tally.reducer == "count":
        return func.sum(case((hit, 1), else_=0))
    missing = 0.0 if tally.reducer == "sum0" else 1.0
    return func.sum(case((hit, func.coalesce(ev.value, missing)), else_=0.0))


def _capped(total: ColumnElement[Any], cap: float | None) -> ColumnElement[Any]:
    if cap is None:
        return total
    return case((total > cap, cap), else_=total)


def metric_value(spec: MetricSpec, role: str, tally: ColumnElement[Any]) -> ColumnElement[Any]:
    """A unit's metric value from its aggregate: 0/1 for binary, capped where a cap applies."""
    if spec.kind == "binary":
        return case((tally > 0, 1), else_=0)
    if role == "d":  # a ratio's denominator is never capped
        return tally
    return _capped(tally, spec.cap_value)


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
