"""Assignment and ingestion endpoints: ``/assign``, ``/features``, ``/events``."""

from __future__ import annotations

from dataclasses import asdict

from flask import jsonify
from werkzeug.wrappers import Response

from experiments.errors import ValidationError
from experiments.services import assignments, events
from web.api import bp
from web.api.body import json_object
from web.api.keys import require_scope
from web.api.openapi import PATHS, op
from web.db import get_session


def _served_json(served: list[assignments.Served]) -> list[dict[str, object]]:
    return [
        {
            **asdict(s),
            "first_exposure_at": s.first_exposure_at.isoformat() if s.first_exposure_at else None,
        }
        for s in served
    ]


@bp.route("/assign", methods=["POST"])
@require_scope("assign")
def assign() -> Response:
    """One unit (``unit_id``, ``attributes``) or a batch (``units``: up to 1,000 of them)."""
    data = json_object()
    session = get_session()
    if "units" in data:
        units = data["units"]
        if not isinstance(units, list) or not all(isinstance(u, dict) for u in units):
            raise ValidationError("units", "send a list of {unit_id, attributes} objects")
        served = assignments.assign_many(
            session, [(u.get("unit_id"), u.get("attributes")) for u in units]
        )
        session.commit()
        return jsonify(
            {
                "results": [
                    {"unit_id": u["unit_id"], "assignments": _served_json(s)}
                    for u, s in zip(units, served, strict=True)
                ]
            }
        )
    served_one = assignments.assign(session, data.get("unit_id"), data.get("attributes"))
    session.commit()
    return jsonify({"unit_id": data["unit_id"], "assignments": _served_json(served_one)})


@bp.route("/features", methods=["GET"])
@require_scope("assign")
def features() -> Response:
    return jsonify(assignments.features_payload(get_session()))


@bp.route("/events", methods=["POST"])
@require_scope("ingest")
def ingest_events() -> tuple[Response, int]:
    data = json_object()
    rows = data.get("events")
    if not isinstance(rows, list) or not rows:
        raise ValidationError("events", "send a non-empty list of events")
    session = get_session()
    result = events.ingest(session, rows)
    session.commit()
    body = {
        "received": result.received,
        "inserted": result.inserted,
        "duplicates": result.duplicates,
    }
    return jsonify(body), 200


PATHS["/assign"] = {
    "post": op(
        "Assign a unit to every running experiment it qualifies for (sticky, first exposure kept)",
        "assign",
        request={
            "type": "object",
            "description": "one unit, or `units` with up to 1,000 of them (answer: `results`)",
            "properties": {
                "unit_id": {"type": "string", "maxLength": 200},
                "attributes": {"type": "object"},
                "units": {
                    "type": "array",
                    "maxItems": 1000,
                    "items": {
                        "type": "object",
                        "required": ["unit_id"],
                        "properties": {
                            "unit_id": {"type": "string", "maxLength": 200},
                            "attributes": {"type": "object"},
                        },
                    },
                },
            },
        },
        response={
            "type": "object",
            "properties": {
                "unit_id": {"type": "string"},
                "assignments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "experiment": {"type": "string"},
                            "variant": {"type": "string"},
                            "variant_index": {"type": "integer"},
                            "incentive": {"type": ["object", "null"]},
                            "reason": {"type": "string", "enum": ["assigned", "sticky", "forced"]},
                            "first_exposure_at": {"type": ["string", "null"]},
                            "strategy": {
                                "type": ["string", "null"],
                                "description": "the variant serves this strategy: ask /decide",
                            },
                        },
                    },
                },
            },
        },
    )
}
PATHS["/features"] = {
    "get": op(
        "GrowthBook-SDK-compatible payload of the running experiments (assign locally)",
        "assign",
        response={"type": "object", "properties": {"features": {"type": "object"}}},
    )
}
PATHS["/events"] = {
    "post": op(
        "Ingest events; idempotent by event_id, all-or-nothing per batch (max 10,000)",
        "ingest",
        request={
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["event_id", "unit_id", "name", "occurred_at"],
                        "properties": {
                            "event_id": {"type": "string"},
                            "unit_id": {"type": "string"},
                            "name": {"type": "string"},
                            "value": {"type": ["number", "null"]},
                            "occurred_at": {"type": "string", "format": "date-time"},
                            "properties": {"type": ["object", "null"]},
                        },
                    },
                }
            },
        },
        response={
            "type": "object",
            "properties": {
                "received": {"type": "integer"},
                "inserted": {"type": "integer"},
                "duplicates": {"type": "integer"},
            },
        },
    )
}
