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
from sqlalchemy import insert

from experiments.db import Assignment, Event
from experiments.services import accounts, catalog, demo_data, experiments

KEY = "report-web"
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


@pytest.fixture
def experiment(app) -> str:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        experiments.create_experiment(
            session,
            {
                "key": KEY,
                "name": "Report on the web",
                "variants": [
                    {"key": "control", "weight": 0.5},
                    {"key": "coupon", "weight": 0.5, "incentive": "coupon_5"},
                ],
                "metrics": {"primary": "conversion"},
            },
            actor="test",
        )
        experiments.transition(session, KEY, "running", actor="test")
        exp = experiments.get_experiment(session, KEY)
        ids = [v.id for v in exp.variants]
        session.execute(
            insert(Assignment),
            [
                {"experiment_id": exp.id, "unit_id": f"user-{i:04d}", "variant_id": ids[i % 2],
                 "first_exposure_at": T0 + dt.timedelta(minutes=i)}
                for i in range(400)
            ],
        )  # fmt: skip
        session.execute(
            insert(Event),
            [
                {"event_id": f"o{i}", "unit_id": f"user-{i:04d}", "name": "order",
                 "value": 20.0, "occurred_at": T0 + dt.timedelta(hours=5, minutes=i)}
                for i in range(0, 400, 3)
            ],
        )  # fmt: skip
    return KEY


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
    page = client.get(f"/experiments/{KEY}/report")
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


def test_report_api_scope_formats_and_errors(app, client, experiment) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        _, admin = accounts.create_api_key(
            session, name="admin", scopes=["admin"], actor="test", account_id=None
        )
        _, other = accounts.create_api_key(
            session, name="app", scopes=["assign"], actor="test", account_id=None
        )
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
