"""/metrics counts requests, latency, errors and decisions; request logs are JSON lines with ids."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from web.observability import JsonFormatter, access_log, record_decision

REPO = Path(__file__).resolve().parents[2]


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    try:
        yield stream
    finally:
        access_log.removeHandler(handler)


def test_metrics_count_requests_latency_and_errors(app, client) -> None:  # type: ignore[no-untyped-def]
    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("deliberate failure for the error counter")

    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    assert client.get("/boom").status_code == 500
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "liftlab_http_requests_total"
    assert delta(requests, method="GET", endpoint="/healthz", status="200") == 3
    assert delta(requests, method="GET", endpoint="<unmatched>", status="404") == 1
    assert delta(requests, method="GET", endpoint="/boom", status="500") == 1
    # the first scrape itself was answered (and counted) before the second one was rendered
    assert delta(requests, method="GET", endpoint="/metrics", status="200") == 1
    latency = "liftlab_http_request_duration_seconds"
    assert delta(f"{latency}_count", method="GET", endpoint="/healthz") == 3
    assert delta(f"{latency}_bucket", method="GET", endpoint="/healthz", le="+Inf") == 3
    assert delta(f"{latency}_sum", method="GET", endpoint="/healthz") > 0
    assert delta("liftlab_http_errors_total", endpoint="/boom", status="500") == 1
    assert delta("liftlab_http_errors_total", endpoint="<unmatched>", status="404") == 0


def test_decisions_and_spend_are_exposed(client) -> None:  # type: ignore[no-untyped-def]
    before = scrape(client)
    record_decision("spring", "coupon_5", "exploit", 5.0)
    record_decision("spring", "coupon_5", "explore", 2.5)
    record_decision("spring", None, "holdout", 0.0)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    served = "liftlab_decisions_served_total"
    assert delta(served, strategy="spring", arm="coupon_5", bucket="exploit") == 1
    assert delta(served, strategy="spring", arm="coupon_5", bucket="explore") == 1
    assert delta(served, strategy="spring", arm="none", bucket="holdout") == 1
    assert delta("liftlab_decision_spend_total", strategy="spring", arm="coupon_5") == 7.5
    assert delta("liftlab_decision_spend_total", strategy="spring", arm="none") == 0


def test_one_json_log_line_per_request_with_the_request_id(client, log_lines) -> None:  # type: ignore[no-untyped-def]
    kept = client.get("/healthz?probe=1", headers={"X-Request-ID": "lb-7f3a:42"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a:42"
    replaced = client.get("/healthz", headers={"X-Request-ID": "two words; forged=1"})
    too_long = client.get("/healthz", headers={"X-Request-ID": "a" * 129})
    generated = client.get("/api/v1/no-such-endpoint")
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", too_long.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    assert replaced.headers["X-Request-ID"] != generated.headers["X-Request-ID"]

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert len(lines) == 4
    first, second, _, third = lines
    assert first["event"] == "request" and first["level"] == "info"
    assert (first["method"], first["path"], first["status"]) == ("GET", "/healthz", 200)
    assert first["request_id"] == "lb-7f3a:42"
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] >= 0
    assert first["ts"].endswith("+00:00")
    assert second["request_id"] == replaced.headers["X-Request-ID"]
    assert (third["path"], third["status"], third["endpoint"]) == (
        "/api/v1/no-such-endpoint",
        404,
        "<unmatched>",
    )
    assert third["request_id"] == generated.headers["X-Request-ID"]


def test_access_log_writes_json_to_stderr_once_however_many_apps(settings, capsys) -> None:  # type: ignore[no-untyped-def]
    from web import create_app

    apps = [create_app({"TESTING": True, "LIFTLAB_SETTINGS": settings}) for _ in range(2)]
    json_handlers = [h for h in access_log.handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(json_handlers) == 1
    assert access_log.propagate is False
    capsys.readouterr()
    apps[1].test_client().get("/healthz", headers={"X-Request-ID": "stderr-check"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["path"], x["request_id"]) for x in lines] == [("/healthz", "stderr-check")]
    disabled = create_app({"TESTING": True, "LIFTLAB_SETTINGS": settings, "METRICS_ENABLED": False})
    assert disabled.test_client().get("/metrics").status_code == 404
    for app in [*apps, disabled]:
        app.extensions["liftlab.engine"].dispose()


INCREMENT = """
from web.observability import REQUESTS, record_decision
REQUESTS.labels("GET", "/x", "200").inc()
record_decision("s", "gift", "exploit", 1.25)
"""
SCRAPE = "from web.observability import metrics_payload; print(metrics_payload()[0].decode())"


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two "workers", each its own process
        subprocess.run([sys.executable, "-c", INCREMENT], cwd=REPO, env=env, check=True)
    done = subprocess.run(
        [sys.executable, "-c", SCRAPE], cwd=REPO, env=env, check=True, capture_output=True
    )
    samples = {}
    for family in text_string_to_metric_families(done.stdout.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert (
        value(samples, "liftlab_http_requests_total", method="GET", endpoint="/x", status="200")
        == 2
    )
    assert value(samples, "liftlab_decision_spend_total", strategy="s", arm="gift") == 2.5
    assert list(tmp_path.glob("counter_*.db"))
