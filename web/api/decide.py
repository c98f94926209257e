"""``POST /api/v1/decide``: which incentive a unit gets, logged with its propensity.

Under a strategy (``strategy``: its batch decision, else a new one — the online model's when
``features`` cover the model's columns, else the fallback's — through the same buckets and within
the budget, see ``experiments.services.strategy_serving``), or in an experiment whose variants are
strategies (``experiment``: the unit is assigned, then served its variant's decision — the
strategy's, drawn and capped as under ``strategy``, the variant's incentive, or none).
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from experiments.db import Decision, Incentive
from experiments.errors import ValidationError
from experiments.services import strategies, strategy_experiments
from web.api import bp
from web.api.body import json_object
from web.api.keys import require_scope
from web.api.openapi import PATHS, op
from web.db import get_session
from web.observability import record_decision


def _decision_json(decision: Decision | None, incentive: Incentive | None) -> dict[str, Any]:
    context = (decision.context or {}) if decision else {}
    return {
        "decision_id": decision.decision_id if decision else None,
        "incentive": (
            {
                "key": incentive.key,
                "kind": incentive.kind,
                "name": incentive.name,
                "params": incentive.params,
            }
            if incentive
            else None
        ),
        "bucket": decision.bucket if decision else None,
        "propensity": decision.propensity if decision else None,
        "source": context.get("source", "batch") if decision else None,
        "expected_value": decision.expected_value if decision else None,
        "expected_cost": decision.expected_cost if decision else None,
        "budget_exhausted": bool(context.get("budget_exhausted")),
        "daily_budget_spent": bool(context.get("daily_budget_spent")),
    }


@bp.route("/decide", methods=["POST"])
@require_scope("assign")
def decide() -> Response:
    data = json_object()
    by_strategy, by_experiment = data.get("strategy"), data.get("experiment")
    if (by_strategy is None) == (by_experiment is None):
        raise ValidationError("strategy", "name either the strategy key or the experiment key")
    field = "strategy" if by_experiment is None else "experiment"
    if not isinstance(data[field], str):
        raise ValidationError(field, f"give the {field} key as a string")
    session = get_session()
    if by_experiment is None:
        decision = strategies.decide(
            session, by_strategy, data.get("unit_id"), data.get("features")
        )
        label, served = by_strategy, {}
    else:
        result = strategy_experiments.decide_in_experiment(
            session,
            by_experiment,
            data.get("unit_id"),
            data.get("features"),
            data.get("attributes"),
        )
        decision = result.decision
        label = f"experiment:{by_experiment}"
        served = {
            "experiment": result.experiment,
            "variant": result.variant,
            "strategy": result.strategy,
            "reason": result.reason,
        }
    incentive = (
        session.get(Incentive, decision.incentive_id)
        if decision and decision.incentive_id
        else None
    )
    body = {"unit_id": data["unit_id"], **_decision_json(decision, incentive), **served}
    session.commit()
    if decision is not None:
        record_decision(
            label, incentive.key if incentive else None, decision.bucket, decision.expected_cost
        )
    return jsonify(body)


PATHS["/decide"] = {
    "post": op(
        "The incentive (or none) a unit gets under an active strategy, or in a running experiment "
        "whose variants are strategies, with bucket and logged propensity",
        "assign",
        description=(
            "Under a strategy, a unit with a logged decision gets it again (`source` `batch`, or "
            "the online source it was first served by). A new unit is decided online: by the "
            "strategy's uplift model (`online-model`) when `features` hold every feature column "
            "of the model its last batch plan used — each approved arm priced with the batch "
            "run's economics and calibration, the arm maximizing value - lambda * cost with the "
            "plan's lambda — else by the fallback incentive (`online-fallback`: no batch plan "
            "yet, a Spark plan, or features missing); both through the same holdout / explore "
            "buckets, so `propensity` is the probability of the served arm. `expected_cost` is "
            "counted in the strategy's ledger; a new decision that would take the ledger past "
            "the budget gets no incentive, its bucket unchanged, and `budget_exhausted` true. "
            "Feature values of the model's columns must be finite numbers (numeric columns) or "
            "strings (categorical; a level never seen in training scores as 'unknown'); a bad one "
            "is a 400 whose `field` is `features.<column>`, with every bad column in `errors`; "
            "at most 200 keys, NaN and infinities refused. Nothing is written on a 4xx. In an "
            "experiment, a strategy variant serves the strategy's own logged decision, else a "
            "new one drawn and capped as above (the same model, features and budget; "
            "`budget_exhausted` when withheld), with `propensity` = the variant's share times "
            "the strategy's."
        ),
        request={
            "type": "object",
            "description": "exactly one of `strategy` and `experiment`",
            "required": ["unit_id"],
            "properties": {
                "strategy": {"type": "string"},
                "experiment": {"type": "string"},
                "unit_id": {"type": "string"},
                "features": {
                    "type": "object",
                    "maxProperties": 200,
                    "description": "the unit's model features (numbers for numeric columns, "
                    "strings for categorical ones); all of them are logged with the decision",
                },
                "attributes": {
                    "type": "object",
                    "description": "targeting attributes (experiment only; default: features)",
                },
            },
        },
        response={
            "type": "object",
            "properties": {
                "decision_id": {"type": ["string", "null"]},
                "unit_id": {"type": "string"},
                "incentive": {"type": ["object", "null"]},
                "bucket": {
                    "type": ["string", "null"],
                    "enum": ["holdout", "explore", "exploit", None],
                },
                "propensity": {"type": ["number", "null"]},
                "source": {
                    "type": ["string", "null"],
                    "enum": ["batch", "online-model", "online-fallback", "experiment", None],
                    "description": "what made the decision",
                },
                "expected_value": {
                    "type": ["number", "null"],
                    "description": "expected incremental value of the served arm (0 for none "
                    "and for the fallback, which has no model)",
                },
                "expected_cost": {
                    "type": ["number", "null"],
                    "description": "expected spend of the served arm, as counted in the ledger",
                },
                "budget_exhausted": {
                    "type": "boolean",
                    "description": "the drawn incentive was withheld: it would have taken the "
                    "strategy's planned spend past its budget",
                },
                "daily_budget_spent": {
                    "type": "boolean",
                    "description": "the drawn incentive was withheld by a paced strategy's daily "
                    "cap: it would have taken the planned spend past today's share of the budget "
                    "(docs/decide.md, Daily pacing)",
                },
                "experiment": {"type": "string"},
                "variant": {"type": ["string", "null"]},
                "strategy": {"type": ["string", "null"]},
                "reason": {
                    "type": "string",
                    "enum": ["assigned", "sticky", "forced", "excluded"],
                },
            },
        },
    )
}
