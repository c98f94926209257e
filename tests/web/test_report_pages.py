"""The report page (roles, generate, downloads) and the report API (scope, formats, errors).

The experiment has exposures and orders but no population file, so the report is the light one
(design, data quality, average effects); the heavy sections are covered by the integration tests.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest

from experiments.services import accounts

KEY = "report-web"
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


@pytest.fixture
def experiment(app, report_experiment) -> str:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        return report_experiment(session, KEY)


@pytest.fixture
def api_keys(app) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Two API keys: one with the admin scope, one with the assign scope only."""
    with app.extensions["liftlab.sessions"].begin() as session:
        _, admin = accounts.create_api_key(
            session, name="admin", scopes=["admin"], actor="test", account_id=None
        )
        _, other = accounts.create_api_key(
            session, name="app", scopes=["assign"], actor="test", account_id=None
        )
    return admin, other


def build_queued(app) -> int:  # type: ignore[no-untyped-def]
    """What the report worker does: build every queued job; returns how many."""
    from experiments.jobs.report_worker import drain

    settings = app.config["LIFTLAB_SETTINGS"]
    return drain(app.extensions["liftlab.sessions"], settings.artifact_dir, worker="test")


def test_report_page_roles_generate_and_downloads(app, client, auth, experiment) -> None:  # type: ignore[no-untyped-def]
    auth.login("viewer@example.com", "viewer")
    page = client.get(f"/experiments/{KEY}/report")
    assert page.status_code == 200 and b'id="no-report"' in page.data
    assert b'id="generate"' not in page.data
    token = auth.csrf_token(f"/experiments/{KEY}/report")
    denied = client.post(f"/experiments/{KEY}/report/generate", data={"csrf_token": token})
    assert denied.status_code == 403
    assert client.get(f"/experiments/{KEY}/report.json").status_code == 404
    client.get("/auth/logout")

    auth.login("analyst@example.com", "analyst")
    token = auth.csrf_token(f"/experiments/{KEY}/report")
    done = client.post(
        f"/experiments/{KEY}/report/generate",
        data={"csrf_token": token, "k_min": "50", "epsilon": ""},
    )
    assert done.status_code == 302
    page = client.get(done.headers["Location"])
    assert b"Report queued (job 1)" in page.data
    assert b'data-status="queued"' in page.data and b'id="report-job-waiting"' in page.data
    assert b'http-equiv="refresh"' in page.data and b'id="no-report"' in page.data
    again = client.post(
        f"/experiments/{KEY}/report/generate",
        data={"csrf_token": token, "k_min": "50", "epsilon": ""},
    )
    assert b"Report queued (job 1)" in client.get(again.headers["Location"]).data  # no second
    assert build_queued(app) == 1
    page = client.get(f"/experiments/{KEY}/report")
    assert b'data-status="done"' in page.data and b'http-equiv="refresh"' not in page.data
    assert b'id="report-downloads"' in page.data
    report = json.loads(client.get(f"/experiments/{KEY}/report.json").data)
    assert report["experiment"]["key"] == KEY and report["data_quality"]["n_units"] == 400
    html = client.get(f"/experiments/{KEY}/report.html")
    assert html.mimetype == "text/html" and b"Causal report" in html.data
    assert b"<script" not in html.data and b"http://" not in html.data.replace(
        b"http://www.w3.org/2000/svg", b""
    )  # self-contained: no scripts, no external assets
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/experiments/{KEY}/report.zip").data))
    assert "average_effects.csv" in archive.namelist()
    for body in (html.data, json.dumps(report).encode(), *map(archive.read, archive.namelist())):
        assert b"user-0" not in body  # unit ids never appear
    assert client.get("/experiments/nope/report").status_code == 404


def test_report_api_scope_formats_and_errors(app, client, experiment, api_keys) -> None:  # type: ignore[no-untyped-def]
    admin, other = api_keys
    url = f"/api/v1/experiments/{KEY}/report"
    assert client.get(url).status_code == 403
    assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    headers = {"Authorization": f"Bearer {admin}"}
    got = client.get(f"{url}?format=json&k_min=60", headers=headers)
    assert got.status_code == 200 and got.get_json()["privacy"]["k_min"] == 60
    csv = client.get(f"{url}?format=csv", headers=headers)
    assert csv.mimetype == "application/zip"
    assert "srm.csv" in zipfile.ZipFile(io.BytesIO(csv.data)).namelist()
    assert client.get(f"{url}?format=html", headers=headers).mimetype == "text/html"
    bad = client.get(f"{url}?format=pdf", headers=headers)
    assert bad.status_code == 400 and bad.get_json()["field"] == "format"
    assert client.get(f"{url}?rebuild=1&epsilon=x", headers=headers).status_code == 400
    missing = client.get("/api/v1/experiments/nope/report", headers=headers)
    assert missing.status_code == 404
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/experiments/{key}/report" in spec["paths"]
    assert {"/experiments/{key}/report-jobs", "/report-jobs/{id}"} <= set(spec["paths"])


def test_report_jobs_over_the_api(app, client, experiment, api_keys) -> None:  # type: ignore[no-untyped-def]
    admin, other = api_keys
    headers = {"Authorization": f"Bearer {admin}"}
    url = f"/api/v1/experiments/{KEY}/report-jobs"
    assert client.post(url, json={}).status_code == 403
    assert (
        client.post(url, json={}, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    )
    for body, field in (
        ({"k_min": 0}, "k_min"),
        ({"k_min": "50"}, "k_min"),
        ({"epsilon": -1}, "epsilon"),
        ({"epsilon": "x"}, "epsilon"),
        ({"kmin": 5}, "kmin"),
    ):
        bad = client.post(url, json=body, headers=headers)
        assert bad.status_code == 400 and bad.get_json()["field"] == field, body
    assert (
        client.post("/api/v1/experiments/nope/report-jobs", json={}, headers=headers).status_code
        == 404
    )
    queued = client.post(url, json={"k_min": 60}, headers=headers)
    assert queued.status_code == 202
    job = queued.get_json()
    assert job["status"] == "queued" and job["k_min"] == 60 and job["epsilon"] is None
    assert job["requested_by"] == "api-key:admin"
    assert queued.headers["Location"].endswith(f"/api/v1/report-jobs/{job['id']}")
    assert client.post(url, json={"k_min": 60}, headers=headers).get_json()["id"] == job["id"]
    other_job = client.post(url, json={"k_min": 70, "epsilon": 2.0}, headers=headers).get_json()
    assert other_job["id"] != job["id"] and other_job["epsilon"] == 2.0
    # no report yet and a job is building one: the report GET points at it, it builds nothing
    waiting = client.get(f"/api/v1/experiments/{KEY}/report?format=json", headers=headers)
    assert waiting.status_code == 202 and waiting.get_json()["id"] == other_job["id"]
    assert waiting.headers["Location"].endswith(f"/api/v1/report-jobs/{other_job['id']}")
    assert build_queued(app) == 2
    done = client.get(f"/api/v1/report-jobs/{job['id']}", headers=headers).get_json()
    assert done["status"] == "done" and done["worker"] == "test" and done["error"] is None
    assert done["started_at"] <= done["finished_at"]
    report = client.get(f"/api/v1/experiments/{KEY}/report?format=json", headers=headers)
    assert report.get_json()["privacy"]["k_min"] == 70  # the last job built wins
    assert client.get("/api/v1/report-jobs/999", headers=headers).status_code == 404
