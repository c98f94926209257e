"""REST API: experiments lifecycle, sticky assignment, GrowthBook-SDK equivalence, event ingestion,
and bad input (clear 4xx, database unchanged)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from experiments.db import Assignment, AuditEntry, Event, Experiment, Variant
from experiments.services import accounts, catalog, demo_data

EXPERIMENT = {
    "key": "checkout-discount",
    "name": "Checkout discount",
    "variants": [
        {"key": "control", "weight": 0.34, "incentive": None},
        {"key": "ten", "weight": 0.33, "incentive": "discount_10"},
        {"key": "ship", "weight": 0.33, "incentive": "free_shipping"},
    ],
    "coverage": 0.8,
    "condition": {"country": {"$in": ["DE", "FR"]}},
    "metrics": {"primary": "conversion", "guardrail": ["incentive_cost"]},
}


@pytest.fixture
def keys(app) -> dict[str, str]:
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        out = {}
        for name, scopes in (("admin", ["admin"]), ("app", ["assign"]), ("pipe", ["ingest"])):
            _, secret = accounts.create_api_key(
                session, name=name, scopes=scopes, actor="test", account_id=None
            )
            out[name] = secret
    return out


def call(client, method: str, path: str, key: str | None, json=None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.open(f"/api/v1{path}", method=method, json=json, headers=headers)


def _count(app, model) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        return int(session.scalar(select(func.count()).select_from(model)))


def _running(client, keys) -> None:  # type: ignore[no-untyped-def]
    assert call(client, "POST", "/experiments", keys["admin"], EXPERIMENT).status_code == 201
    response = call(
        client,
        "POST",
        "/experiments/checkout-discount/status",
        keys["admin"],
        {"status": "running"},
    )
    assert response.status_code == 200, response.get_json()


def test_lifecycle_is_audited_and_only_allowed_transitions(client, keys, app) -> None:
    _running(client, keys)
    bad = call(
        client,
        "POST",
        "/experiments/checkout-discount/status",
        keys["admin"],
        {"status": "archived"},
    )
    assert bad.status_code == 409
    assert "running experiment can move to stopped" in bad.get_json()["message"]
    for status in ("stopped", "concluded"):
        body = {"status": status, "winner": "ten"} if status == "concluded" else {"status": status}
        assert (
            call(
                client, "POST", "/experiments/checkout-discount/status", keys["admin"], body
            ).status_code
            == 200
        )
    got = call(client, "GET", "/experiments/checkout-discount", keys["admin"]).get_json()
    assert got["status"] == "concluded" and got["winner"] == "ten"
    with app.extensions["liftlab.sessions"]() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[-1] == "strategy.create"  # the declared winner feeds a strategy
    assert actions[-5:-1] == [
        "experiment.create",
        "experiment.running",
        "experiment.stopped",
        "experiment.concluded",
    ]


def test_assignment_is_deterministic_sticky_and_recorded_once(client, keys, app) -> None:
    _running(client, keys)
    first = call(
        client, "POST", "/assign", keys["app"], {"unit_id": "u-1", "attributes": {"country": "DE"}}
    ).get_json()
    again = call(
        client, "POST", "/assign", keys["app"], {"unit_id": "u-1", "attributes": {"country": "DE"}}
    ).get_json()
    if first["assignments"]:
        assert first["assignments"][0]["variant"] == again["assignments"][0]["variant"]
        assert again["assignments"][0]["reason"] == "sticky"
    outside = call(
        client, "POST", "/assign", keys["app"], {"unit_id": "u-1", "attributes": {"country": "US"}}
    ).get_json()
    # sticky even when the unit no longer matches the targeting
    assert outside["assignments"] == again["assignments"]
    served = {}
    for i in range(200):
        body = call(
            client,
            "POST",
            "/assign",
            keys["app"],
            {"unit_id": f"user-{i}", "attributes": {"country": "FR"}},
        ).get_json()
        served[f"user-{i}"] = [a["variant"] for a in body["assignments"]]
    # ramp-down and a weight change made directly in the database never move an assigned unit
    assert (
        call(
            client, "PATCH", "/experiments/checkout-discount", keys["admin"], {"coverage": 0.1}
        ).status_code
        == 200
    )
    with app.extensions["liftlab.sessions"].begin() as session:
        for variant in session.scalars(select(Variant)):
            variant.weight = 1.0 if variant.key == "control" else 0.0
    for unit, variants in served.items():
        body = call(
            client,
            "POST",
            "/assign",
            keys["app"],
            {"unit_id": unit, "attributes": {"country": "FR"}},
        ).get_json()
        assert [a["variant"] for a in body["assignments"]] == variants
    n_assigned = sum(1 for v in served.values() if v)
    assert 100 < n_assigned < 200  # 80% coverage of 200
    assert _count(app, Assignment) == n_assigned + (1 if first["assignments"] else 0)


def test_features_payload_assigns_10000_users_like_the_growthbook_sdk(client, keys) -> None:
    from growthbook import GrowthBook

    _running(client, keys)
    payload = call(client, "GET", "/features", keys["app"]).get_json()
    assert "checkout-discount" in payload["features"]
    incentive_of = {"control": "none", "ten": "discount_10", "ship": "free_shipping"}
    ours = {}
    for start in range(0, 10_000, 1_000):
        units = [
            {"unit_id": f"sdk-{i}", "attributes": {"country": ("DE" if i % 3 else "US")}}
            for i in range(start, start + 1_000)
        ]
        body = call(client, "POST", "/assign", keys["app"], {"units": units}).get_json()
        for unit, result in zip(units, body["results"], strict=True):
            ours[unit["unit_id"]] = (unit["attributes"], result["assignments"])
    assert len(ours) == 10_000
    gb = GrowthBook(features=payload["features"])
    in_experiment = 0
    for unit, (attributes, assigned) in ours.items():
        gb.set_attributes({"id": unit, **attributes})
        expected = incentive_of[assigned[0]["variant"]] if assigned else "none"
        assert gb.get_feature_value("checkout-discount", "none") == expected, unit
        in_experiment += bool(assigned)
    gb.destroy()
    # 80% coverage of the two thirds that match the condition
    assert 5_000 < in_experiment < 5_700


def test_events_are_idempotent(client, keys, app) -> None:
    events = [
        {
            "event_id": f"e{i}",
            "unit_id": "u1",
            "name": "order",
            "value": 10.0 + i,
            "occurred_at": "2026-11-01T10:00:00Z",
        }
        for i in range(10)
    ]
    first = call(client, "POST", "/events", keys["pipe"], {"events": events}).get_json()
    assert first == {"received": 10, "inserted": 10, "duplicates": 0}
    again = call(
        client, "POST", "/events", keys["pipe"], {"events": events + events[:3]}
    ).get_json()
    assert again == {"received": 13, "inserted": 0, "duplicates": 13}
    assert _count(app, Event) == 10


@pytest.mark.parametrize(
    ("path", "scope", "body", "status", "field"),
    [
        ("/assign", "app", {"attributes": {}}, 400, "unit_id"),
        ("/assign", "app", {"unit_id": "u", "attributes": [1]}, 400, "attributes"),
        ("/assign", "app", None, 400, "body"),
        ("/assign", "pipe", {"unit_id": "u"}, 403, None),
        ("/assign", None, {"unit_id": "u"}, 403, None),
        ("/events", "pipe", {"events": []}, 400, "events"),
        ("/events", "app", {"events": [{}]}, 403, None),
        ("/experiments", "app", EXPERIMENT, 403, None),
        ("/experiments", "admin", {**EXPERIMENT, "key": "Bad Key"}, 400, "key"),
        ("/experiments", "admin", {**EXPERIMENT, "coverage": 1.5}, 400, "coverage"),
        (
            "/experiments",
            "admin",
            {**EXPERIMENT, "variants": EXPERIMENT["variants"][:1]},
            400,
            "variants",
        ),
        (
            "/experiments",
            "admin",
            {**EXPERIMENT, "variants": [{**v, "weight": 0.5} for v in EXPERIMENT["variants"]]},
            400,
            "variants",
        ),
        (
            "/experiments",
            "admin",
            {
                **EXPERIMENT,
                "variants": [
                    *EXPERIMENT["variants"][:2],
                    {"key": "x", "weight": 0.33, "incentive": "nope"},
                ],
            },
            400,
            "variants[2].incentive",
        ),
        (
            "/experiments",
            "admin",
            {**EXPERIMENT, "condition": {"country": {"$bogus": 1}}},
            400,
            "condition",
        ),
        (
            "/experiments",
            "admin",
            {**EXPERIMENT, "metrics": {"primary": "nope"}},
            400,
            "metrics.primary",
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    client, keys, app, path, scope, body, status, field
) -> None:
    before = (
        _count(app, Experiment),
        _count(app, Assignment),
        _count(app, Event),
        _count(app, AuditEntry),
    )
    key = keys[scope] if scope else None
    if body is None:
        response = client.post(
            f"/api/v1{path}", data="not json", headers={"Authorization": f"Bearer {key}"}
        )
    else:
        response = call(client, "POST", path, key, body)
    assert response.status_code == status
    error = response.get_json()
    assert error["message"]
    if field:
        assert error["field"] == field
    after = (
        _count(app, Experiment),
        _count(app, Assignment),
        _count(app, Event),
        _count(app, AuditEntry),
    )
    assert after == before


def test_every_bad_row_is_listed_and_nothing_is_stored(client, keys, app) -> None:
    good = {
        "event_id": "ok",
        "unit_id": "u",
        "name": "order",
        "value": 1.0,
        "occurred_at": "2026-11-01T10:00:00Z",
    }
    batch = [
        good,
        {**good, "event_id": "f1", "occurred_at": "2099-01-01T00:00:00Z"},
        {**good, "event_id": "f2", "properties": {"blob": "x" * 10_000}},
        {**good, "event_id": "f3", "value": True},
        {**good, "unit_id": None, "event_id": "f4"},
    ]
    response = call(client, "POST", "/events", keys["pipe"], {"events": batch})
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (1, "occurred_at"),
        (2, "properties"),
        (3, "value"),
        (4, "unit_id"),
    ]
    assert "future" in errors[0]["reason"]
    too_many = [{**good, "event_id": f"m{i}"} for i in range(10_001)]
    response = call(client, "POST", "/events", keys["pipe"], {"events": too_many})
    assert response.status_code == 400 and "10,000" in response.get_json()["message"]
    assert _count(app, Event) == 0


def test_bad_event_in_a_batch_stores_nothing(client, keys, app) -> None:
    good = {
        "event_id": "g1",
        "unit_id": "u",
        "name": "order",
        "value": 1.0,
        "occurred_at": "2026-11-01T10:00:00Z",
    }
    for bad, field in (
        ({**good, "event_id": "b1", "occurred_at": "2026-11-01T10:00:00"}, "events[1].occurred_at"),
        ({**good, "event_id": "b2", "value": "ten"}, "events[1].value"),
        ({**good, "event_id": ""}, "events[1].event_id"),
        ({**good, "event_id": "b3", "colour": "red"}, "events[1].colour"),
    ):
        response = call(client, "POST", "/events", keys["pipe"], {"events": [good, bad]})
        assert response.status_code == 400
        assert response.get_json()["field"] == field
    assert _count(app, Event) == 0


def test_overlapping_namespace_ranges_are_refused(client, keys) -> None:
    a = {**EXPERIMENT, "key": "a", "namespace": {"name": "checkout", "start": 0.0, "end": 0.5}}
    b = {**EXPERIMENT, "key": "b", "namespace": {"name": "checkout", "start": 0.4, "end": 0.9}}
    c = {**EXPERIMENT, "key": "c", "namespace": {"name": "checkout", "start": 0.5, "end": 1.0}}
    assert call(client, "POST", "/experiments", keys["admin"], a).status_code == 201
    refused = call(client, "POST", "/experiments", keys["admin"], b)
    assert refused.status_code == 409 and refused.get_json()["field"] == "namespace"
    assert call(client, "POST", "/experiments", keys["admin"], c).status_code == 201


def test_openapi_lists_the_endpoints(client) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/assign", "/features", "/events", "/experiments", "/experiments/{key}/status"):
        assert path in paths
