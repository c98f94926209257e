"""Production observability of the web app: request ids, JSON request logs, Prometheus metrics.

Layer: web (Flask and prometheus_client only). ``init_app`` registers:

- Request ids: ``X-Request-ID`` from the client (or the proxy) is kept when it is a short token
  (letters, digits, ``._:-``, at most 128 characters), otherwise a new uuid4 hex is generated; it
  is on ``g.request_id``, echoed in the response header and written in the request's log line.
- One JSON line per request on the ``liftlab.access`` logger (stderr): ``ts``, ``level``,
  ``event``, ``method``, ``path``, ``endpoint``, ``status``, ``latency_ms``, ``request_id``,
  ``remote_addr``. Turn gunicorn's own access log off (``GUNICORN_ACCESSLOG=/dev/null``) so each
  request is logged once.
- Metrics at ``/metrics`` (Prometheus text format): requests by method, endpoint (the URL rule,
  e.g. ``/api/v1/experiments/<key>``, so the label set stays bounded) and status; a latency
  histogram; server errors (status >= 500); decisions served and their expected spend, which the
  serving views report through ``record_decision``.

Multiprocess mode (gunicorn runs several worker processes, each with its own counters): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable folder before gunicorn starts (wipe it at every
start); each worker then writes its samples to files there and ``/metrics`` sums them over all
workers, whichever worker answers the scrape. Only counters and histograms are used, so no
gunicorn ``child_exit`` hook is needed (that hook matters for live gauges). Without the variable
(``liftlab serve``, tests) the process's default registry is served.

``/metrics`` has no authentication, like ``/healthz``: expose it to the scraper only (the proxy
should not route it from outside). ``METRICS_ENABLED=False`` in the app config removes the route.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

from flask import Blueprint, Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from werkzeug.wrappers import Response

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

access_log = logging.getLogger("liftlab.access")

REQUESTS = Counter(
    "liftlab_http_requests_total",
    "HTTP requests answered, by method, endpoint (URL rule) and status code.",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "liftlab_http_request_duration_seconds",
    "Time from the request reaching the app to the response leaving it.",
    ["method", "endpoint"],
    buckets=LATENCY_BUCKETS,
)
ERRORS = Counter(
    "liftlab_http_errors_total",
    "Responses with a server error (status >= 500), by endpoint and status code.",
    ["endpoint", "status"],
)
DECISIONS = Counter(
    "liftlab_decisions_served_total",
    "Incentive decisions served, by strategy, arm ('none' for no incentive) and bucket.",
    ["strategy", "arm", "bucket"],
)
SPEND = Counter(
    "liftlab_decision_spend_total",
    "Expected incentive cost of the decisions served (shop currency), by strategy and arm.",
    ["strategy", "arm"],
)

bp = Blueprint("observability", __name__)


def record_decision(strategy: str, arm: str | None, bucket: str, expected_cost: float) -> None:
    """Count one served decision and add its expected cost to the spend (call from the view)."""
    label = arm or "none"
    DECISIONS.labels(strategy, label, bucket).inc()
    if expected_cost > 0:
        SPEND.labels(strategy, label).inc(expected_cost)


def metrics_payload() -> tuple[bytes, str]:
    """The exposition text and its content type; summed over workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@bp.route("/metrics")
def metrics() -> Response:
    body, content_type = metrics_payload()
    return Response(body, content_type=content_type)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def request_id_from(header: str | None) -> str:
    """The client's id when it is a short safe token, else a new one (never trust log input)."""
    if header and _SAFE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))


def _finish_request(response: Response) -> Response:
    started = g.get("request_started", time.perf_counter())
    request_id = g.get("request_id") or request_id_from(None)
    latency = time.perf_counter() - started
    endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    status = response.status_code
    REQUESTS.labels(request.method, endpoint, str(status)).inc()
    LATENCY.labels(request.method, endpoint).observe(latency)
    if status >= 500:
        ERRORS.labels(endpoint, str(status)).inc()
    response.headers[REQUEST_ID_HEADER] = request_id
    access_log.info(
        "request",
        extra={
            "fields": {
                "method": request.method,
                "path": request.path,
                "endpoint": endpoint,
                "status": status,
                "latency_ms": round(latency * 1000.0, 3),
                "request_id": request_id,
                "remote_addr": request.remote_addr,
            }
        },
    )
    return response


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (test runners and servers swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_access_log() -> None:
    """JSON lines on stderr for ``liftlab.access``, once per process (not via the root logger)."""
    if not any(isinstance(h.formatter, JsonFormatter) for h in access_log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def init_app(app: Flask) -> None:
    configure_access_log()
    # registered first: this before_request runs before the others, this after_request last,
    # so it sees the final status and times the whole request
    app.before_request(_start_request)
    app.after_request(_finish_request)
    if app.config.get("METRICS_ENABLED", True):
        app.register_blueprint(bp)
