"""The uplift-model pages: runs with their metrics, a run's Qini curves, promote and demote
(analyst+, CSRF, one promoted run per experiment, audited through ``services.models``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from experiments.db import AuditEntry, ModelRun
from experiments.services import catalog, demo_data, experiments
from web.models.chart import qini_chart

SPEC: dict[str, Any] = {
    "key": "checkout-test",
    "name": "Checkout test",
    "variants": [
        {"key": "control", "weight": 0.5, "incentive": None},
        {"key": "ten", "weight": 0.5, "incentive": "discount_10"},
    ],
    "metrics": {"primary": "conversion"},
}
METRICS: dict[str, Any] = {
    "n_train": 4200, "n_test": 1800, "arms": ["discount_10", "coupon_5"],
    "qini": {"discount_10": 0.0123, "coupon_5": -0.0045},
    "auuc": {"discount_10": 0.0312, "coupon_5": 0.0101},
    "qini_curves": {"discount_10": {"x": [0, 300, 600, 900], "y": [0, 9, 14, 12]},
                    "coupon_5": {"x": [0, 450, 900], "y": [0, 2, 3]}},
    "policy_value_ipw": 0.084, "policy_value_se": 0.004, "control_value": 0.07,
    "policy_share": {"discount_10": 0.6, "coupon_5": 0.1},
}  # fmt: skip
FINGERPRINT = "3f9a0c1d2e4b" + "7" * 52  # a sha256 in hex


@pytest.fixture
def runs(app) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Two succeeded runs (the first promoted) and a failed one, on one experiment."""
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        experiment = experiments.create_experiment(session, SPEC, actor="test")
        rows = {
            "old": ModelRun(experiment_id=experiment.id, architecture="tarnet",
                            status="succeeded", metrics=METRICS, promoted=True),
            "new": ModelRun(experiment_id=experiment.id, architecture="dragonnet",
                            status="succeeded", metrics=METRICS, artifact_path="/a/run-2",
                            created_by="ana", data_fingerprint=FINGERPRINT),
            "failed": ModelRun(experiment_id=experiment.id, architecture="dragonnet",
                               status="failed", error="ValueError: no treated users",
                               created_by="bob", data_fingerprint="0" * 64),
        }  # fmt: skip
        session.add_all(rows.values())
        session.flush()
        return {name: run.id for name, run in rows.items()}


def promoted(app) -> set[int]:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        return set(session.scalars(select(ModelRun.id).where(ModelRun.promoted.is_(True))))


def row_of(listing: str, run_id: int) -> str:
    row = listing[listing.index(f'id="run-{run_id}"') :]
    return row[: row.index("</tr>")]


def test_viewer_sees_runs_metrics_and_curves_but_cannot_promote(client, auth, app, runs) -> None:
    auth.login("viewer@example.com", "viewer")
    listing = client.get("/models/").get_data(as_text=True)
    row = row_of(listing, runs["new"])
    assert "checkout-test" in row and "dragonnet" in row and "4,200 / 1,800" in row
    assert "discount_10 <b>0.0123</b>" in row and "coupon_5 <b>-0.0045</b>" in row
    assert "0.0312" in row and "0.0840" in row and "0.0700" in row and "+20.0%" in row
    assert "<th>Run by</th><th>Data</th>" in listing and "liftlab models train" in listing
    # who ran it, and the training data's fingerprint: 12 hex digits, the whole sha256 on hover
    assert '<td class="created-by">ana</td>' in row
    assert f'<code class="fingerprint" title="{FINGERPRINT}">3f9a0c1d2e4b</code>' in row
    assert FINGERPRINT not in row.replace(f'title="{FINGERPRINT}"', "")
    failed_row = row_of(listing, runs["failed"])
    assert "run-failed" in failed_row and "ValueError: no treated users" in failed_row
    assert '<td class="created-by">bob</td>' in failed_row and ">000000000000</code>" in failed_row
    old_row = row_of(listing, runs["old"])  # recorded before runs had either: a dash
    assert '<td class="created-by">—</td>' in old_row and "fingerprint" not in old_row
    page = client.get(f"/models/{runs['new']}").get_data(as_text=True)
    assert re.search(r'<svg id="qini-chart"[^>]*>', page)
    assert page.count('class="qini-line"') == 2 and page.count('class="qini-baseline"') == 2
    assert "60.0%" in page and "/a/run-2" in page
    assert '<dd class="created-by">ana</dd>' in page and f'title="{FINGERPRINT}"' in page
    assert 'id="promote"' not in page and 'id="demote"' not in page
    token = auth.csrf_token(f"/models/{runs['new']}")
    for action in ("promote", "demote"):
        refused = client.post(f"/models/{runs['old']}/{action}", data={"csrf_token": token})
        assert refused.status_code == 403
    assert promoted(app) == {runs["old"]}
    assert client.get("/models/999999").status_code == 404
    failed = client.get(f"/models/{runs['failed']}").get_data(as_text=True)
    assert 'id="run-error"' in failed and 'id="no-curves"' in failed


def test_analyst_promotes_one_run_per_experiment_audited(client, auth, app, runs) -> None:
    auth.login("ana@example.com", "analyst")
    page = client.get(f"/models/{runs['new']}").get_data(as_text=True)
    assert 'id="promote"' in page and "data-confirm=" in page
    token = auth.csrf_token(f"/models/{runs['new']}")
    assert client.post(f"/models/{runs['new']}/promote", data={}).status_code == 400  # no CSRF
    assert promoted(app) == {runs["old"]}
    response = client.post(f"/models/{runs['new']}/promote", data={"csrf_token": token})
    assert response.status_code == 302
    assert promoted(app) == {runs["new"]}  # the old one was demoted
    with app.extensions["liftlab.sessions"]() as session:
        entries = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity_type == "model_run")
                .order_by(AuditEntry.id)
            )
        )
    assert [(e.action, e.entity_id, e.actor) for e in entries] == [
        ("model.demote", str(runs["old"]), "ana@example.com"),
        ("model.promote", str(runs["new"]), "ana@example.com"),
    ]
    refused = client.post(f"/models/{runs['failed']}/promote", data={"csrf_token": token})
    assert refused.status_code == 302
    assert "promote a succeeded run" in client.get(refused.headers["Location"]).get_data(
        as_text=True
    )
    assert promoted(app) == {runs["new"]}
    client.post(f"/models/{runs['new']}/demote", data={"csrf_token": token})
    assert promoted(app) == set()


def test_qini_chart_geometry() -> None:
    chart = qini_chart(METRICS["qini_curves"])
    assert chart is not None and [c.arm for c in chart.curves] == ["discount_10", "coupon_5"]
    left, top, right, bottom = chart.plot
    first = chart.curves[0]
    assert first.line.startswith(f"M{float(left)},{chart.zero_y}") and first.gain == 12
    assert first.line.split()[-1].startswith(f"L{float(right)},")  # x is the share targeted
    assert qini_chart({"a": {"x": [0], "y": [0]}}) is None
