"""Experiment configuration and lifecycle over the API (scope ``admin``)."""

from __future__ import annotations

from flask import g, jsonify, request
from werkzeug.wrappers import Response

from experiments.services import experiments
from web.api import bp
from web.api.body import json_object
from web.api.keys import require_scope
from web.api.openapi import PATHS, op
from web.db import get_session


def _actor() -> str:
    return f"api-key:{g.api_key_name}"


@bp.route("/experiments", methods=["GET"])
@require_scope("admin")
def list_experiments() -> Response:
    session = get_session()
    rows = experiments.list_experiments(session, status=request.args.get("status") or None)
    return jsonify({"experiments": [experiments.snapshot(session, e) for e in rows]})


@bp.route("/experiments", methods=["POST"])
@require_scope("admin")
def create_experiment() -> tuple[Response, int]:
    session = get_session()
    experiment = experiments.create_experiment(session, json_object(), actor=_actor())
    body = experiments.snapshot(session, experiment)
    session.commit()
    return jsonify(body), 201


@bp.route("/experiments/<key>", methods=["GET"])
@require_scope("admin")
def get_experiment(key: str) -> Response:
    session = get_session()
    return jsonify(experiments.snapshot(session, experiments.get_experiment(session, key)))


@bp.route("/experiments/<key>", methods=["PATCH"])
@require_scope("admin")
def update_experiment(key: str) -> Response:
    session = get_session()
    experiment = experiments.update_experiment(session, key, json_object(), actor=_actor())
    body = experiments.snapshot(session, experiment)
    session.commit()
    return jsonify(body)


@bp.route("/experiments/<key>/status", methods=["POST"])
@require_scope("admin")
def change_status(key: str) -> Response:
    session = get_session()
    data = json_object()
    experiment = experiments.transition(
        session,
        key,
        str(data.get("status", "")),
        actor=_actor(),
        winner=data.get("winner"),
        note=data.get("note"),
    )
    body = experiments.snapshot(session, experiment)
    session.commit()
    return jsonify(body)


_EXPERIMENT = {
    "type": "object",
    "description": "an experiment as `experiments.snapshot` returns it",
}
_KEY = [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}]
PATHS["/experiments"] = {
    "get": op("List experiments (filter with ?status=)", "admin", response=_EXPERIMENT),
    "post": op(
        "Create a draft experiment",
        "admin",
        request={
            "type": "object",
            "required": ["key", "name", "variants"],
            "properties": {
                "key": {"type": "string"},
                "name": {"type": "string"},
                "hypothesis": {"type": "string"},
                "variants": {
                    "type": "array",
                    "minItems": 2,
                    "items": {
                        "type": "object",
                        "required": ["key", "weight"],
                        "properties": {
                            "key": {"type": "string"},
                            "name": {"type": "string"},
                            "weight": {"type": "number"},
                            "incentive": {"type": ["string", "null"]},
                        },
                    },
                },
                "coverage": {"type": "number"},
                "namespace": {"type": ["object", "null"]},
                "condition": {"type": ["object", "null"]},
                "forced": {"type": ["object", "null"]},
                "design": {"type": "object"},
                "metrics": {"type": "object"},
            },
        },
        response=_EXPERIMENT,
    ),
}
PATHS["/experiments/{key}"] = {
    "get": op("One experiment", "admin", response=_EXPERIMENT, parameters=_KEY),
    "patch": op(
        "Edit an experiment (after the start: name, coverage, design, metrics only)",
        "admin",
        request={"type": "object"},
        response=_EXPERIMENT,
        parameters=_KEY,
    ),
}
PATHS["/experiments/{key}/status"] = {
    "post": op(
        "Move along the lifecycle; concluding may declare a winner",
        "admin",
        request={
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["running", "stopped", "concluded", "archived"],
                },
                "winner": {"type": ["string", "null"]},
                "note": {"type": ["string", "null"]},
            },
        },
        response=_EXPERIMENT,
        parameters=_KEY,
    )
}
