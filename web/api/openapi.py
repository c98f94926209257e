"""The OpenAPI 3.1 document at ``/api/v1/openapi.json``, built from ``SPEC`` (one entry per route)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from web.api import bp

ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "field": {"type": "string"},
        "status": {"type": "integer"},
        "errors": {
            "type": "array",
            "description": "every problem found: index (the row of a batch), field, reason",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
    "required": ["error", "message", "status"],
}

# other modules add their paths here when they register routes
PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {
        "get": {
            "summary": "Liveness: the database answers",
            "servers": [{"url": "/"}],
            "responses": {"200": {"description": "ok"}, "503": {"description": "database down"}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: database up and schema at the latest migration",
            "servers": [{"url": "/"}],
            "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
        }
    },
}


def op(
    summary: str,
    scope: str,
    *,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """One operation: security by key scope, JSON in and out, the shared error schema."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation: dict[str, Any] = {
        "summary": summary,
        **({"description": description} if description else {}),
        "security": [{"apiKey": []}],
        "x-scope": scope,
        "responses": {
            "200": {
                "description": "ok",
                "content": {"application/json": {"schema": response or {"type": "object"}}},
            },
            "400": {"description": "bad input; `field` names it", **error},
            "403": {"description": "missing, revoked or under-scoped key", **error},
        },
    }
    if request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": request}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "liftlab API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
        },
        "paths": PATHS,
    }


@bp.route("/openapi.json")
def openapi_json() -> Response:
    return jsonify(document())
