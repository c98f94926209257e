"""The incentive catalog and metric definitions: validation, listing, loading the defaults."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.db import INCENTIVE_KINDS, METRIC_KINDS, Incentive, Metric
from experiments.errors import ConflictError, NotFoundError, ValidationError
from experiments.services import audit

_KEY = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,99}$")

# parameters each kind must carry, with the check applied to each
_REQUIRED_PARAMS: dict[str, dict[str, tuple[str, Any]]] = {
    "percent_discount": {"percent": ("a number in (0, 100)", lambda v: 0 < float(v) < 100)},
    "fixed_coupon": {"amount": ("a positive amount", lambda v: float(v) > 0)},
    "free_shipping": {},
    "gift": {},
    "bundle": {},
}


def check_key(field: str, key: str) -> str:
    if not _KEY.match(key or ""):
        raise ValidationError(
            field, f"{key!r} is not a valid key; use lowercase letters, digits, '-' or '_'"
        )
    return key


def validate_incentive(kind: str, params: Mapping[str, Any]) -> None:
    if kind not in INCENTIVE_KINDS:
        raise ValidationError(
            "kind", f"{kind!r} is unknown; choose one of {', '.join(INCENTIVE_KINDS)}"
        )
    for name, (expected, check) in _REQUIRED_PARAMS[kind].items():
        if name not in params:
            raise ValidationError(f"params.{name}", f"a {kind} needs {name} ({expected})")
        try:
            ok = check(params[name])
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValidationError(f"params.{name}", f"{params[name]!r} is not {expected}")


def create_incentive(
    session: Session,
    *,
    key: str,
    name: str,
    kind: str,
    params: Mapping[str, Any],
    cost_model: Mapping[str, Any],
    description: str | None = None,
    actor: str = "system",
) -> Incentive:
    check_key("key", key)
    validate_incentive(kind, params)
    if not (name or "").strip():
        raise ValidationError("name", "give the incentive a name people recognise")
    if session.scalar(select(Incentive.id).where(Incentive.key == key)) is not None:
        raise ConflictError("key", f"an incentive {key!r} already exists; choose another key")
    incentive = Incentive(
        key=key,
        name=name.strip(),
        kind=kind,
        params=dict(params),
        cost_model=dict(cost_model),
        description=description,
    )
    session.add(incentive)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="incentive.create",
        entity_type="incentive",
        entity_id=key,
        after={"kind": kind, "params": dict(params), "cost_model": dict(cost_model)},
    )
    return incentive


def list_incentives(session: Session, *, active_only: bool = False) -> list[Incentive]:
    query = select(Incentive).order_by(Incentive.id)
    if active_only:
        query = query.where(Incentive.active.is_(True))
    return list(session.scalars(query))


def get_incentive(session: Session, key: str) -> Incentive:
    incentive = session.scalar(select(Incentive).where(Incentive.key == key))
    if incentive is None:
        raise NotFoundError("incentive", key)
    return incentive


def create_metric(
    session: Session,
    *,
    key: str,
    name: str,
    kind: str,
    event_name: str,
    denominator_event: str | None = None,
    window_hours: int = 24 * 30,
    higher_is_better: bool = True,
    cuped: bool = True,
    cap_value: float | None = None,
    description: str | None = None,
    actor: str = "system",
) -> Metric:
    check_key("key", key)
    if kind not in METRIC_KINDS:
        raise ValidationError(
            "kind", f"{kind!r} is unknown; choose one of {', '.join(METRIC_KINDS)}"
        )
    if kind == "ratio" and not denominator_event:
        raise ValidationError("denominator_event", "a ratio metric needs a denominator event")
    if int(window_hours) <= 0:
        raise ValidationError("window_hours", "must be a positive number of hours")
    if session.scalar(select(Metric.id).where(Metric.key == key)) is not None:
        raise ConflictError("key", f"a metric {key!r} already exists; choose another key")
    metric = Metric(
        key=key,
        name=name,
        kind=kind,
        event_name=event_name,
        denominator_event=denominator_event,
        window_hours=int(window_hours),
        higher_is_better=higher_is_better,
        cuped=cuped,
        cap_value=cap_value,
        description=description,
    )
    session.add(metric)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="metric.create",
        entity_type="metric",
        entity_id=key,
        after={"kind": kind, "event_name": event_name, "window_hours": int(window_hours)},
    )
    return metric


def list_metrics(session: Session) -> list[Metric]:
    return list(session.scalars(select(Metric).order_by(Metric.id)))


DEFAULT_METRICS: list[dict[str, Any]] = [
    {"key": "conversion", "name": "Conversion", "kind": "binary", "event_name": "order"},
    {"key": "revenue", "name": "Revenue per user", "kind": "sum", "event_name": "order"},
    {"key": "orders", "name": "Orders per user", "kind": "count", "event_name": "order"},
    {
        "key": "margin",
        "name": "Margin per user (net of incentive cost)",
        "kind": "sum",
        "event_name": "margin",
    },
    {
        "key": "incentive_cost",
        "name": "Incentive cost per user",
        "kind": "sum",
        "event_name": "incentive_cost",
        "higher_is_better": False,
    },
]


def ensure_defaults(
    session: Session, incentives: Iterable[Mapping[str, Any]], *, actor: str = "system"
) -> tuple[int, int]:
    """Add the given incentives and the default metrics that are missing; returns counts added."""
    have_incentives = {i.key for i in list_incentives(session)}
    added_incentives = 0
    for spec in incentives:
        if spec["key"] not in have_incentives:
            create_incentive(session, actor=actor, **spec)
            added_incentives += 1
    have_metrics = {m.key for m in list_metrics(session)}
    added_metrics = 0
    for spec in DEFAULT_METRICS:
        if spec["key"] not in have_metrics:
            create_metric(session, actor=actor, **spec)
            added_metrics += 1
    return added_incentives, added_metrics
