"""The incentive catalog page and its create form: roles, validation next to the field, CSRF."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from experiments.db import AuditEntry, Incentive
from experiments.services import catalog, demo_data


def incentive(app, key: str) -> Incentive | None:  # type: ignore[no-untyped-def]
    with app.extensions["liftlab.sessions"]() as session:
        return session.scalar(select(Incentive).where(Incentive.key == key))


def errors_at(page: str, field_id: str) -> str:
    for label in re.findall(r"<label[^>]*>.*?</label>", page, flags=re.S):
        if f'id="{field_id}"' in label:
            return " ".join(
                html.unescape(e) for e in re.findall(r'class="error"[^>]*>([^<]*)', label)
            )
    raise AssertionError(f"no field {field_id}")


def test_viewer_sees_the_catalog_but_cannot_add(client, auth, app) -> None:
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    auth.login("viewer@example.com", "viewer")
    page = client.get("/incentives/").get_data(as_text=True)
    assert "10% off" in page and "percent_of_gross" in page and "min_basket" in page
    assert "New incentive" not in page
    token = auth.csrf_token("/incentives/")
    assert client.get("/incentives/new").status_code == 403
    data = {"csrf_token": token, "key": "x", "name": "X", "kind": "gift", "params": "{}",
            "cost_model": "unit_cost_per_converter"}  # fmt: skip
    assert client.post("/incentives/new", data=data).status_code == 403
    assert incentive(app, "x") is None


def test_analyst_adds_an_incentive_after_fixing_an_error(client, auth, app) -> None:
    auth.login("ana@example.com", "analyst")
    assert "New incentive" in client.get("/incentives/").get_data(as_text=True)
    token = auth.csrf_token("/incentives/new")
    data = {"csrf_token": token, "key": "discount_15", "name": "15% off", "kind": "percent_discount",
            "params": '{"percent": 150}', "cost_model": "percent_of_gross",
            "description": "spring sale"}  # fmt: skip
    bad = client.post("/incentives/new", data=data)
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "150 is not a number in (0, 100)" in errors_at(page, "params")
    assert 'value="discount_15"' in page and "spring sale" in page
    for params, message in (('{"percent": ', "is not valid JSON"), ("[1]", "give a JSON object")):
        page = client.post("/incentives/new", data={**data, "params": params}).get_data(
            as_text=True
        )
        assert message in errors_at(page, "params")
    assert "not a valid key" in errors_at(
        client.post("/incentives/new", data={**data, "key": "Bad Key"}).get_data(as_text=True),
        "key",
    )
    assert incentive(app, "discount_15") is None
    ok = client.post("/incentives/new", data={**data, "params": '{"percent": 15}'})
    assert ok.status_code == 302
    stored = incentive(app, "discount_15")
    assert stored is not None and stored.params == {"percent": 15}
    assert stored.cost_model == {"model": "percent_of_gross"}
    with app.extensions["liftlab.sessions"]() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None and (entry.action, entry.actor) == (
        "incentive.create",
        "ana@example.com",
    )
    duplicate = client.post("/incentives/new", data={**data, "params": '{"percent": 15}'})
    assert duplicate.status_code == 400
    assert "already exists" in errors_at(duplicate.get_data(as_text=True), "key")
    no_token = {k: v for k, v in data.items() if k != "csrf_token"}
    assert client.post("/incentives/new", data={**no_token, "key": "other"}).status_code == 400
    assert incentive(app, "other") is None
