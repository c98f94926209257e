"""One error handler: JSON for ``/api/`` clients, HTML for browsers. Errors roll the session back."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from experiments.errors import (
    ConflictError,
    LiftlabError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from web.db import close_session

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _respond(
    status: int,
    title: str,
    message: str,
    field: str | None = None,
    errors: list[dict[str, object]] | None = None,
) -> Response:
    close_session()  # roll back whatever the failed request wrote
    if _wants_json():
        body: dict[str, object] = {"error": title, "message": message, "status": status}
        if field:
            body["field"] = field
        if errors:
            body["errors"] = errors
        response = jsonify(body)
    else:
        response = Response(
            render_template("errors/error.html", status=status, title=title, message=message),
            mimetype="text/html",
        )
    response.status_code = status
    return response


def handle_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    return _respond(status, exc.name, exc.description or exc.name)


def handle_csrf(exc: CSRFError) -> Response:
    return _respond(400, "CSRF check failed", f"{exc.description} Reload the page and try again.")


def handle_domain(exc: LiftlabError) -> Response:
    if isinstance(exc, ValidationError):
        return _respond(400, "Bad Request", str(exc), exc.field, exc.errors)
    if isinstance(exc, NotFoundError):
        return _respond(404, "Not Found", str(exc))
    if isinstance(exc, ConflictError):
        return _respond(409, "Conflict", str(exc), exc.field)
    if isinstance(exc, PermissionDeniedError):
        return _respond(403, "Forbidden", str(exc))
    return _respond(400, "Bad Request", str(exc))


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return handle_http(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _respond(500, "Internal Server Error", "Something went wrong on our side.")


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(LiftlabError, handle_domain)
    app.register_error_handler(Exception, handle_unexpected)
