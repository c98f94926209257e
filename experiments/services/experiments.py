"""Experiments: create and edit with validation, the lifecycle, assignment configs (services layer).

Lifecycle: draft → running ⇄ stopped → concluded → archived (drafts and stopped experiments can also
be archived). Every change is audited with the state before and after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.assignment import (
    DEFAULT_HASH_VERSION,
    ExperimentConfig,
    Namespace,
    namespace_ranges_overlap,
)
from experiments.db import (
    METRIC_ROLES,
    STATUSES,
    Experiment,
    ExperimentMetric,
    Incentive,
    Metric,
    Strategy,
    Variant,
    utcnow,
)
from experiments.errors import ConflictError, NotFoundError, ValidationError
from experiments.services import audit
from experiments.services.catalog import check_key
from experiments.targeting import validate_condition

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("running", "archived"),
    "running": ("stopped",),
    "stopped": ("running", "concluded", "archived"),
    "concluded": ("archived",),
    "archived": (),
}
ACTIVE_STATUSES = ("draft", "running", "stopped")
DESIGNS = ("sequential", "group_sequential", "fixed", "bayesian")
DEFAULT_DESIGN = {"type": "sequential", "alpha": 0.05, "n_star": 10_000, "cuped": True}


# --- reading -------------------------------------------------------------------------------------


def list_experiments(session: Session, *, status: str | None = None) -> list[Experiment]:
    query = select(Experiment).order_by(Experiment.created_at.desc(), Experiment.id.desc())
    if status:
        if status not in STATUSES:
            raise ValidationError(
                "status", f"{status!r} is unknown; use one of {', '.join(STATUSES)}"
            )
        query = query.where(Experiment.status == status)
    return list(session.scalars(query))


def get_experiment(session: Session, key: str) -> Experiment:
    experiment = session.scalar(select(Experiment).where(Experiment.key == key))
    if experiment is None:
        raise NotFoundError("experiment", key)
    return experiment


def metrics_by_role(session: Session, experiment: Experiment) -> dict[str, list[Metric]]:
    out: dict[str, list[Metric]] = {role: [] for role in METRIC_ROLES}
    for link in experiment.metric_links:
        metric = session.get(Metric, link.metric_id)
        if metric is not None:
            out[link.role].append(metric)
    return out


def snapshot(session: Session, experiment: Experiment) -> dict[str, Any]:
    """The experiment as a JSON-ready dict (audit log, API)."""
    incentive_keys = {i.id: i.key for i in session.scalars(select(Incentive))}
    strategy_keys = {s.id: s.key for s in session.scalars(select(Strategy))}
    roles = metrics_by_role(session, experiment)
    return {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "status": experiment.status,
        "seed": experiment.seed,
        "hash_version": experiment.hash_version,
        "hash_attribute": experiment.hash_attribute,
        "coverage": experiment.coverage,
        "namespace": (
            {
                "name": experiment.namespace,
                "start": experiment.namespace_start,
                "end": experiment.namespace_end,
            }
            if experiment.namespace
            else None
        ),
        "condition": experiment.condition,
        "forced": experiment.forced,
        "design": experiment.design,
        "variants": [
            {
                "key": v.key,
                "name": v.name,
                "weight": v.weight,
                "incentive": incentive_keys.get(v.incentive_id) if v.incentive_id else None,
                "strategy": strategy_keys.get(v.strategy_id) if v.strategy_id else None,
            }
            for v in experiment.variants
        ],
        "metrics": {role: [m.key for m in metrics] for role, metrics in roles.items()},
        "winner": experiment.winner_variant_key,
        "started_at": experiment.started_at.isoformat() if experiment.started_at else None,
        "stopped_at": experiment.stopped_at.isoformat() if experiment.stopped_at else None,
        "concluded_at": experiment.concluded_at.isoformat() if experiment.concluded_at else None,
    }


# --- validation ----------------------------------------------------------------------------------


def _number(field: str, value: Any, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(
            field, f"{value!r} is not a number; give one in [{low}, {high}]"
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValidationError(field, f"{number} is outside [{low}, {high}]")
    return number


def _variants(session: Session, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) < 2:
        raise ValidationError("variants", "give at least two variants: a control and a treatment")
    incentives = {i.key: i for i in session.scalars(select(Incentive))}
    strategies = {s.key: s for s in session.scalars(select(Strategy))}
    seen: set[str] = set()
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValidationError(f"variants[{i}]", "each variant is an object with key, weight")
        key = check_key(f"variants[{i}].key", str(item.get("key", "")))
        if key in seen:
            raise ValidationError(f"variants[{i}].key", f"{key!r} is used twice; keys must differ")
        seen.add(key)
        incentive_key = item.get("incentive") or None
        if incentive_key is not None and incentive_key not in incentives:
            raise ValidationError(
                f"variants[{i}].incentive",
                f"{incentive_key!r} is not in the catalog; choose one of "
                f"{', '.join(sorted(incentives)) or '(empty catalog)'} or leave it empty",
            )
        # a strategy variant serves each user what the strategy decides (POST /api/v1/decide)
        strategy_key = item.get("strategy") or None
        if strategy_key is not None and incentive_key is not None:
            raise ValidationError(
                f"variants[{i}].strategy",
                "a variant gives either an incentive or a strategy's decisions; drop one",
            )
        if strategy_key is not None and strategy_key not in strategies:
            raise ValidationError(
                f"variants[{i}].strategy",
                f"{strategy_key!r} is not a strategy; choose one of "
                f"{', '.join(sorted(strategies)) or '(none yet)'} or leave it empty",
            )
        out.append(
            {
                "key": key,
                "name": str(item.get("name") or key),
                "weight": _number(f"variants[{i}].weight", item.get("weight"), 0.0, 1.0),
                "incentive_id": incentives[incentive_key].id if incentive_key else None,
                "strategy_id": strategies[strategy_key].id if strategy_key else None,
            }
        )
    total = sum(v["weight"] for v in out)
    if abs(total - 1.0) > 1e-6:
        raise ValidationError("variants", f"weights sum to {total:.6g}; they must sum to 1")
    return out


def _metric_links(session: Session, raw: Any) -> list[tuple[int, str]]:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise ValidationError(
            "metrics", "give {'primary': key, 'secondary': [...], 'guardrail': [...]}"
        )
    metrics = {m.key: m.id for m in session.scalars(select(Metric))}
    links: list[tuple[int, str]] = []
    for role in METRIC_ROLES:
        keys = raw.get(role) or []
        keys = [keys] if isinstance(keys, str) else list(keys)
        if role == "primary" and len(keys) > 1:
            raise ValidationError("metrics.primary", "choose exactly one primary metric")
        for key in keys:
            if key not in metrics:
                raise ValidationError(
                    f"metrics.{role}", f"{key!r} is not a metric; define it first or pick another"
                )
            if any(metric_id == metrics[key] for metric_id, _ in links):
                raise ValidationError(f"metrics.{role}", f"{key!r} is listed twice")
            links.append((metrics[key], role))
    return links


def _design(raw: Any) -> dict[str, Any]:
    design = dict(DEFAULT_DESIGN)
    if raw:
        if not isinstance(raw, Mapping):
            raise ValidationError(
                "design", "give an object, e.g. {'type': 'sequential', 'n_star': 10000}"
            )
        design.update(raw)
    if design["type"] not in DESIGNS:
        raise ValidationError(
            "design.type", f"{design['type']!r} is unknown; use one of {', '.join(DESIGNS)}"
        )
    design["alpha"] = _number("design.alpha", design["alpha"], 1e-6, 0.5)
    design["n_star"] = int(_number("design.n_star", design["n_star"], 1, 1e12))
    if design["type"] == "group_sequential":
        looks = int(_number("design.looks", design.get("looks", 5), 1, 100))
        design["looks"] = looks
        design["planned_n"] = int(
            _number("design.planned_n", design.get("planned_n", 10_000), 2, 1e12)
        )
        if design.get("spending", "obrien_fleming") not in ("obrien_fleming", "pocock"):
            raise ValidationError("design.spending", "use 'obrien_fleming' or 'pocock'")
        design.setdefault("spending", "obrien_fleming")
    return design


def _namespace(raw: Any) -> tuple[str | None, float, float]:
    if not raw:
        return None, 0.0, 1.0
    if not isinstance(raw, Mapping) or not raw.get("name"):
        raise ValidationError("namespace", "give {'name': ..., 'start': 0.0, 'end': 0.5}")
    start = _number("namespace.start", raw.get("start", 0.0), 0.0, 1.0)
    end = _number("namespace.end", raw.get("end", 1.0), 0.0, 1.0)
    if start >= end:
        raise ValidationError("namespace.end", f"must be greater than start ({start})")
    return check_key("namespace.name", str(raw["name"])), start, end


def _check_namespace_free(session: Session, experiment: Experiment) -> None:
    if not experiment.namespace:
        return
    others = session.scalars(
        select(Experiment).where(
            Experiment.namespace == experiment.namespace,
            Experiment.status.in_(ACTIVE_STATUSES),
            Experiment.id != experiment.id,
        )
    )
    mine = (experiment.namespace_start, experiment.namespace_end)
    for other in others:
        if namespace_ranges_overlap(mine, (other.namespace_start, other.namespace_end)):
            raise ConflictError(
                "namespace",
                f"range [{mine[0]}, {mine[1]}) overlaps {other.key!r} "
                f"[{other.namespace_start}, {other.namespace_end}) in namespace "
                f"{experiment.namespace!r}; choose a free range",
            )


def _forced(raw: Any, variant_keys: list[str]) -> dict[str, str] | None:
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError("forced", "give {unit_id: variant_key} for QA users")
    for unit, key in raw.items():
        if key not in variant_keys:
            raise ValidationError(
                f"forced.{unit}", f"{key!r} is not one of {', '.join(variant_keys)}"
            )
    return {str(k): str(v) for k, v in raw.items()}


def _condition(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError(
            "condition", "give a targeting condition object, e.g. {'country': 'DE'}"
        )
    try:
        validate_condition(raw)
    except ValueError as exc:
        raise ValidationError("condition", str(exc)) from None
    return dict(raw)


# --- writing -------------------------------------------------------------------------------------


def _apply(session: Session, experiment: Experiment, data: Mapping[str, Any]) -> None:
    if "name" in data or experiment.name is None:
        name = str(data.get("name") or "").strip()
        if not name:
            raise ValidationError("name", "give the experiment a name")
        experiment.name = name
    if "hypothesis" in data:
        experiment.hypothesis = data.get("hypothesis") or None
    if "coverage" in data:
        experiment.coverage = _number("coverage", data["coverage"], 0.0, 1.0)
    if "hash_attribute" in data:
        experiment.hash_attribute = check_key("hash_attribute", str(data["hash_attribute"]))
    if "hash_version" in data:
        if data["hash_version"] not in (1, 2):
            raise ValidationError("hash_version", "use 2 (or 1 for old GrowthBook SDKs)")
        experiment.hash_version = int(data["hash_version"])
    if "namespace" in data:
        name, start, end = _namespace(data["namespace"])
        experiment.namespace, experiment.namespace_start, experiment.namespace_end = (
            name,
            start,
            end,
        )
    if "condition" in data:
        experiment.condition = _condition(data["condition"])
    if "design" in data:
        experiment.design = _design(data["design"])
    if "variants" in data:
        specs = _variants(session, data["variants"])
        experiment.variants.clear()
        session.flush()
        for position, spec in enumerate(specs):
            experiment.variants.append(Variant(position=position, **spec))
    if "forced" in data or "variants" in data:
        experiment.forced = _forced(
            data.get("forced", experiment.forced), [v.key for v in experiment.variants]
        )
    if "metrics" in data:
        links = _metric_links(session, data["metrics"])
        experiment.metric_links.clear()
        session.flush()
        for metric_id, role in links:
            experiment.metric_links.append(ExperimentMetric(metric_id=metric_id, role=role))


def create_experiment(session: Session, data: Mapping[str, Any], *, actor: str) -> Experiment:
    """Create a draft experiment from ``data`` (key, name, variants, coverage, namespace, ...)."""
    key = check_key("key", str(data.get("key", "")))
    if session.scalar(select(Experiment.id).where(Experiment.key == key)) is not None:
        raise ConflictError("key", f"an experiment {key!r} already exists; choose another key")
    if "variants" not in data:
        raise ValidationError("variants", "give at least two variants: a control and a treatment")
    experiment = Experiment(
        key=key,
        name="",
        status="draft",
        seed=str(data.get("seed") or key),
        hash_version=DEFAULT_HASH_VERSION,
        design=dict(DEFAULT_DESIGN),
    )
    session.add(experiment)
    _apply(session, experiment, {"name": data.get("name"), **data})
    _check_namespace_free(session, experiment)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="experiment.create",
        entity_type="experiment",
        entity_id=key,
        after=snapshot(session, experiment),
    )
    return experiment


# fields that may change once an experiment has started: changing the others would move users
LIVE_EDITABLE = ("name", "hypothesis", "coverage", "design", "metrics", "forced")


def update_experiment(
    session: Session, key: str, data: Mapping[str, Any], *, actor: str
) -> Experiment:
    experiment = get_experiment(session, key)
    if experiment.status in ("concluded", "archived"):
        raise ConflictError("status", f"a {experiment.status} experiment can no longer be edited")
    if experiment.status != "draft":
        frozen = sorted(set(data) - set(LIVE_EDITABLE))
        if frozen:
            raise ConflictError(
                frozen[0],
                f"cannot change {frozen[0]} after the start (it would move assigned users); "
                "stop it and create a new experiment instead",
            )
    before = snapshot(session, experiment)
    _apply(session, experiment, data)
    _check_namespace_free(session, experiment)
    experiment.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="experiment.update",
        entity_type="experiment",
        entity_id=key,
        before=before,
        after=snapshot(session, experiment),
    )
    return experiment


def allowed_transitions(experiment: Experiment) -> tuple[str, ...]:
    return TRANSITIONS[experiment.status]


def transition(
    session: Session,
    key: str,
    to_status: str,
    *,
    actor: str,
    winner: str | None = None,
    note: str | None = None,
) -> Experiment:
    """Move an experiment along its lifecycle; concluding may declare a winning variant."""
    experiment = get_experiment(session, key)
    if to_status not in STATUSES:
        raise ValidationError(
            "status", f"{to_status!r} is unknown; use one of {', '.join(STATUSES)}"
        )
    if to_status not in TRANSITIONS[experiment.status]:
        allowed = ", ".join(TRANSITIONS[experiment.status]) or "nothing"
        raise ConflictError(
            "status", f"a {experiment.status} experiment can move to {allowed}, not {to_status}"
        )
    before = snapshot(session, experiment)
    now = utcnow()
    if to_status == "running":
        if not experiment.metric_links:
            raise ValidationError("metrics", "choose a primary metric before starting")
        _check_namespace_free(session, experiment)
        experiment.started_at = experiment.started_at or now
        experiment.stopped_at = None
    elif to_status == "stopped":
        experiment.stopped_at = now
    elif to_status == "concluded":
        if winner is not None and winner not in [v.key for v in experiment.variants]:
            raise ValidationError(
                "winner",
                f"{winner!r} is not a variant; choose one of "
                + ", ".join(v.key for v in experiment.variants),
            )
        experiment.winner_variant_key = winner
        experiment.concluded_at = now
    experiment.status = to_status
    experiment.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"experiment.{to_status}",
        entity_type="experiment",
        entity_id=key,
        before=before,
        after=snapshot(session, experiment),
        note=note,
    )
    if to_status == "concluded" and winner is not None:
        from experiments.services.strategies import feed_winner

        feed_winner(session, experiment, actor=actor)
    return experiment


# --- assignment ----------------------------------------------------------------------------------


def assignment_config(experiment: Experiment) -> ExperimentConfig:
    """The pure assignment configuration of a stored experiment."""
    index = {v.key: v.position for v in experiment.variants}
    namespace = (
        Namespace(experiment.namespace, experiment.namespace_start, experiment.namespace_end)
        if experiment.namespace
        else None
    )
    return ExperimentConfig(
        key=experiment.key,
        num_variations=len(experiment.variants),
        weights=tuple(v.weight for v in experiment.variants),
        coverage=experiment.coverage,
        seed=experiment.seed,
        hash_version=experiment.hash_version,
        hash_attribute=experiment.hash_attribute,
        namespace=namespace,
        condition=experiment.condition,
        running=experiment.status == "running",
        forced_variations={u: index[k] for u, k in (experiment.forced or {}).items() if k in index},
    )
