"""The experiments admin: list and filters, the create/edit form and its errors, the lifecycle,
coverage ramps, roles and CSRF (Flask test client, SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import select

from experiments.db import AuditEntry, Experiment
from experiments.services import catalog, demo_data, experiments

SPEC: dict[str, Any] = {
    "key": "checkout-test",
    "name": "Checkout test",
    "variants": [
        {"key": "control", "weight": 0.5, "incentive": None},
        {"key": "ten", "weight": 0.5, "incentive": "discount_10"},
    ],
    "metrics": {"primary": "conversion", "guardrail": ["incentive_cost"]},
}


@pytest.fixture
def loaded(app):  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    return app


def make(app, status: str = "draft", **over: Any) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"].begin() as session:
        experiments.create_experiment(session, {**SPEC, **over}, actor="test")
        path = {"running": ["running"], "stopped": ["running", "stopped"]}.get(status, [])
        for step in path:
            experiments.transition(session, over.get("key", SPEC["key"]), step, actor="test")


def stored(app, key: str = "checkout-test") -> Experiment | None:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        experiment = session.scalar(select(Experiment).where(Experiment.key == key))
        if experiment is not None:
            experiment.variants  # noqa: B018 - load before the session closes
            session.expunge_all()
        return experiment


def form(token: str, **over: str) -> dict[str, str]:
    data = {
        "csrf_token": token,
        "key": "checkout-test",
        "name": "Checkout test",
        "hypothesis": "10% off lifts conversion",
        "variants-0-key": "control",
        "variants-0-name": "Control",
        "variants-0-weight": "0.5",
        "variants-0-incentive": "",
        "variants-1-key": "ten",
        "variants-1-name": "Ten off",
        "variants-1-weight": "0.5",
        "variants-1-incentive": "discount_10",
        "condition": '{"device": "mobile"}',
        "namespace_name": "",
        "namespace_start": "0",
        "namespace_end": "1",
        "coverage": "0.8",
        "metric_primary": "conversion",
        "metric_guardrail": "incentive_cost",
        "design_type": "sequential",
        "design_alpha": "0.05",
        "design_n_star": "20000",
        "design_looks": "5",
        "design_planned_n": "10000",
        "design_spending": "obrien_fleming",
        "design_cuped": "y",
    }
    data.update(over)
    return data


def error_next_to(page: str, field_id: str) -> str:
    """The error messages inside the label that holds the field ``field_id``."""
    for label in re.findall(r"<label[^>]*>.*?</label>", page, flags=re.S):
        if f'id="{field_id}"' in label:
            return " ".join(
                html.unescape(e) for e in re.findall(r'class="error"[^>]*>([^<]*)', label)
            )
    raise AssertionError(f"no field {field_id} on the page")


def value_of(page: str, field_id: str) -> str:
    match = re.search(rf'<input[^>]*id="{re.escape(field_id)}"[^>]*>', page)
    assert match, field_id
    found = re.search(r'value="([^"]*)"', match.group(0))
    return html.unescape(found.group(1)) if found else ""


def test_pages_render_for_viewer_without_write_controls(client, auth, loaded) -> None:
    make(loaded, status="running")
    auth.login("viewer@example.com", "viewer")
    listing = client.get("/experiments/").get_data(as_text=True)
    assert "checkout-test" in listing and "New experiment" not in listing
    detail = client.get("/experiments/checkout-test")
    assert detail.status_code == 200
    page = detail.get_data(as_text=True)
    assert "Checkout test" in page and "10% off" in page and "Conversion" in page
    assert "data-status=" not in page and "ramp-form" not in page and "/edit" not in page
    assert client.get("/experiments/nope").status_code == 404
    # the navigation links the new pages
    assert 'href="/experiments/"' in page


def test_anonymous_is_sent_to_login_and_viewer_gets_403_on_writes(client, auth, loaded) -> None:
    make(loaded, status="running")
    for path in (
        "/experiments/",
        "/experiments/_new",
        "/experiments/checkout-test",
        "/experiments/checkout-test/edit",
        "/experiments/checkout-test/results",
        "/incentives/",
        "/incentives/new",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/auth/login?next="), path
    auth.login("viewer@example.com", "viewer")
    token = auth.csrf_token("/experiments/")
    assert client.get("/experiments/_new").status_code == 403
    assert client.get("/experiments/checkout-test/edit").status_code == 403
    writes = {
        "/experiments/_new": form(token, key="other"),
        "/experiments/checkout-test/edit": form(token, name="Renamed"),
        "/experiments/checkout-test/status": {"csrf_token": token, "status": "stopped"},
        "/experiments/checkout-test/coverage": {"csrf_token": token, "coverage": "0.1"},
    }
    for path, data in writes.items():
        assert client.post(path, data=data).status_code == 403, path
    experiment = stored(loaded)
    assert experiment is not None and experiment.status == "running"
    assert experiment.coverage == 1.0 and experiment.name == "Checkout test"
    assert stored(loaded, "other") is None


def test_create_through_the_form_is_saved_and_audited(client, auth, loaded) -> None:
    auth.login("ana@example.com", "analyst")
    page = client.get("/experiments/_new").get_data(as_text=True)
    assert 'name="variants-1-incentive"' in page and "Power calculator" in page
    token = auth.csrf_token("/experiments/_new")
    response = client.post("/experiments/_new", data=form(token))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/experiments/checkout-test"
    with loaded.extensions["liftlab.sessions"]() as session:
        snap = experiments.snapshot(session, experiments.get_experiment(session, "checkout-test"))
        actions = list(
            session.scalars(select(AuditEntry.actor).where(AuditEntry.entity_id == "checkout-test"))
        )
    assert [v["incentive"] for v in snap["variants"]] == [None, "discount_10"]
    assert snap["coverage"] == 0.8 and snap["condition"] == {"device": "mobile"}
    assert snap["metrics"] == {
        "primary": ["conversion"],
        "secondary": [],
        "guardrail": ["incentive_cost"],
    }
    assert snap["design"]["type"] == "sequential" and snap["design"]["n_star"] == 20000
    assert actions == ["ana@example.com"]
    detail = client.get("/experiments/checkout-test").get_data(as_text=True)
    assert "of 2000 simulated users" in detail  # the share of the sample that qualifies


def test_weights_not_summing_to_one_keep_the_input(client, auth, loaded) -> None:
    auth.login("ana@example.com", "analyst")
    token = auth.csrf_token("/experiments/_new")
    response = client.post(
        "/experiments/_new",
        data=form(token, **{"variants-1-weight": "0.6", "name": "Kept name"}),
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'id="variants-error"[^>]*>weights sum to 1\.1; they must sum to 1', page)
    assert value_of(page, "name") == "Kept name"
    assert value_of(page, "variants-1-weight") == "0.6"
    assert '<option selected value="discount_10">' in page
    assert stored(loaded) is None


ERROR_CASES = [
    ({"condition": "{device: mobile"}, "condition", "is not valid JSON"),
    ({"condition": '{"device": {"$bogus": 1}}'}, "condition", "$bogus"),
    ({"variants-1-key": "Bad Key"}, "variants-1-key", "is not a valid key"),
    ({"coverage": "1.5"}, "coverage", "outside [0.0, 1.0]"),
    ({"coverage": ""}, "coverage", "give a number"),
    ({"metric_primary": "nope"}, "metric_primary", "is not a metric"),
    ({"design_type": "group_sequential", "design_looks": "0"}, "design_looks", "outside"),
]


def test_errors_appear_next_to_their_field(client, auth, loaded) -> None:
    auth.login("ana@example.com", "analyst")
    token = auth.csrf_token("/experiments/_new")
    for over, field_id, message in ERROR_CASES:
        response = client.post("/experiments/_new", data=form(token, **over))
        assert response.status_code == 400, over
        page = response.get_data(as_text=True)
        assert message in error_next_to(page, field_id), over
        assert value_of(page, "name") == "Checkout test"
    assert stored(loaded) is None


def test_namespace_overlap_is_refused_at_the_field(client, auth, loaded) -> None:
    make(loaded, key="first", namespace={"name": "checkout", "start": 0.0, "end": 0.5})
    auth.login("ana@example.com", "analyst")
    token = auth.csrf_token("/experiments/_new")
    data = form(token, namespace_name="checkout", namespace_start="0.25", namespace_end="0.75")
    response = client.post("/experiments/_new", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "overlaps 'first'" in error_next_to(page, "namespace_name")
    assert value_of(page, "namespace_start") == "0.25"
    data["namespace_start"] = "0.5"
    assert client.post("/experiments/_new", data=data).status_code == 302


def test_edit_a_draft_then_a_running_experiment(client, auth, loaded) -> None:
    make(loaded)
    auth.login("ana@example.com", "analyst")
    page = client.get("/experiments/checkout-test/edit").get_data(as_text=True)
    assert value_of(page, "variants-1-key") == "ten"
    token = auth.csrf_token("/experiments/checkout-test/edit")
    data = form(token, name="Renamed", **{"variants-0-weight": "0.4", "variants-1-weight": "0.6"})
    data.pop("key")
    assert client.post("/experiments/checkout-test/edit", data=data).status_code == 302
    experiment = stored(loaded)
    assert experiment is not None and experiment.name == "Renamed"
    assert [v.weight for v in experiment.variants] == [0.4, 0.6]
    with loaded.extensions["liftlab.sessions"].begin() as session:
        experiments.transition(session, "checkout-test", "running", actor="test")
    page = client.get("/experiments/checkout-test/edit").get_data(as_text=True)
    assert 'name="variants-0-key"' not in page and "frozen once an experiment has started" in page
    live = {
        k: v for k, v in data.items() if not k.startswith(("variants", "namespace", "condition"))
    }
    live.update(name="Live rename", coverage="0.3")
    assert client.post("/experiments/checkout-test/edit", data=live).status_code == 302
    experiment = stored(loaded)
    assert experiment is not None and (experiment.name, experiment.coverage) == ("Live rename", 0.3)
    assert [v.weight for v in experiment.variants] == [0.4, 0.6]


def test_only_allowed_transitions_are_offered_and_audited(client, auth, loaded) -> None:
    make(loaded)
    auth.login("ana@example.com", "analyst")
    page = client.get("/experiments/checkout-test").get_data(as_text=True)
    assert sorted(re.findall(r'data-status="(\w+)"', page)) == ["archived", "running"]
    assert "data-confirm=" in page
    token = auth.csrf_token("/experiments/checkout-test")
    refused = client.post(
        "/experiments/checkout-test/status", data={"csrf_token": token, "status": "stopped"}
    )
    assert refused.status_code == 302
    assert "can move to running, archived, not stopped" in client.get(
        "/experiments/checkout-test"
    ).get_data(as_text=True)
    started = client.post(
        "/experiments/checkout-test/status", data={"csrf_token": token, "status": "running"}
    )
    assert started.status_code == 302
    page = client.get("/experiments/checkout-test").get_data(as_text=True)
    assert re.findall(r'data-status="(\w+)"', page) == ["stopped"]
    assert "ramp-form" in page
    with loaded.extensions["liftlab.sessions"]() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None and (entry.action, entry.actor) == (
        "experiment.running",
        "ana@example.com",
    )
    dashboard = client.get("/").get_data(as_text=True)
    assert "checkout-test" in dashboard


def test_coverage_ramp_and_its_error_next_to_the_field(client, auth, loaded) -> None:
    make(loaded, status="running")
    auth.login("ana@example.com", "analyst")
    token = auth.csrf_token("/experiments/checkout-test")
    bad = client.post(
        "/experiments/checkout-test/coverage", data={"csrf_token": token, "coverage": "1.5"}
    )
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "outside [0.0, 1.0]" in error_next_to(page, "coverage")
    assert value_of(page, "coverage") == "1.5"
    ok = client.post(
        "/experiments/checkout-test/coverage", data={"csrf_token": token, "coverage": "0.25"}
    )
    assert ok.status_code == 302
    experiment = stored(loaded)
    assert experiment is not None and experiment.coverage == 0.25


def test_posts_without_csrf_token_are_refused(client, auth, loaded) -> None:
    make(loaded)
    auth.login("ana@example.com", "analyst")
    token = auth.csrf_token("/experiments/_new")
    data = form(token, key="no-token")
    data.pop("csrf_token")
    assert client.post("/experiments/_new", data=data).status_code == 400
    refused = client.post("/experiments/checkout-test/status", data={"status": "running"})
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    assert stored(loaded, "no-token") is None
    experiment = stored(loaded)
    assert experiment is not None and experiment.status == "draft"


def test_list_filters_and_form_helpers_for_viewer(client, auth, loaded) -> None:
    make(loaded, key="alpha-one", name="Alpha one")
    make(loaded, key="beta-two", name="Beta two", status="running")
    auth.login("viewer@example.com", "viewer")

    def keys(query: str) -> list[str]:
        page = client.get(f"/experiments/?{query}").get_data(as_text=True)
        return re.findall(r'<td><a href="/experiments/([\w-]+)">', page)

    assert sorted(keys("")) == ["alpha-one", "beta-two"]
    assert keys("status=running") == ["beta-two"]
    assert keys("q=ALPHA") == ["alpha-one"]
    assert keys("status=draft&q=beta") == []
    assert client.get("/experiments/?status=bogus").status_code == 400
    # the form's helpers: the share of the sample that qualifies, the power calculator
    everyone = client.get("/experiments/_targeting-share").get_json()
    assert everyone == {"matched": 2000, "sample": 2000, "share": 1.0}
    mobile = client.get('/experiments/_targeting-share?condition={"device":"mobile"}').get_json()
    assert 0 < mobile["matched"] < 2000
    bad = client.get('/experiments/_targeting-share?condition={"device":{"$nope":1}}')
    assert bad.status_code == 400 and bad.get_json()["field"] == "condition"
    plan = client.get(
        "/experiments/_power?baseline=0.05&relative_mde=0.1&daily_units=1000"
    ).get_json()
    assert plan["n_per_arm_sequential"] > plan["n_per_arm_fixed"] > 0
    assert plan["days_fixed"] == -(-plan["n_total_fixed"] // 1000)
    bad = client.get("/experiments/_power?baseline=2&relative_mde=0.1")
    assert bad.status_code == 400 and bad.get_json()["field"] == "baseline"
