"""``POST /api/v1/decide``: which incentive a unit gets under a strategy, logged with propensity."""

from __future__ import annotations

from flask import jsonify
from werkzeug.wrappers import Response

from experiments.db import Incentive
from experiments.errors import ValidationError
from experiments.services import strategies
from web.api import bp
from web.api.body import json_object
from web.api.keys import require_scope
from web.api.openapi import PATHS, op
from web.db import get_session
from web.observability import record_decision


@bp.route("/decide", methods=["POST"])
@require_scope("assign")
def decide() -> Response:
    data = json_object()
    if not isinstance(data.get("strategy"), str):
        raise ValidationError("strategy", "name the strategy key")
    session = get_session()
    decision = strategies.decide(
        session, data["strategy"], data.get("unit_id"), data.get("features")
    )
    incentive = session.get(Incentive, decision.incentive_id) if decision.incentive_id else None
    body = {
        "decision_id": decision.decision_id,
        "unit_id": decision.unit_id,
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
        "bucket": decision.bucket,
        "propensity": decision.propensity,
    }
    session.commit()
    record_decision(
        data["strategy"],
        incentive.key if incentive else None,
        decision.bucket,
        decision.expected_cost,
    )
    return jsonify(body)


PATHS["/decide"] = {
    "post": op(
        "The incentive (or none) a unit gets under an active strategy, with bucket and propensity",
        "assign",
        request={
            "type": "object",
            "required": ["strategy", "unit_id"],
            "properties": {
                "strategy": {"type": "string"},
                "unit_id": {"type": "string"},
                "features": {"type": "object"},
            },
        },
        response={
            "type": "object",
            "properties": {
                "decision_id": {"type": "string"},
                "incentive": {"type": ["object", "null"]},
                "bucket": {"type": "string", "enum": ["holdout", "explore", "exploit"]},
                "propensity": {"type": "number"},
            },
        },
    )
}
