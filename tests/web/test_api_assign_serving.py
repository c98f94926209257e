"""/api/v1/assign on the per-process cache of running experiments: the statements one request
costs, edits made anywhere (even straight in SQL, bypassing the app) served from the next request,
compilation only when the serving rows change, and the API key's once-a-minute last_used_at."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select, text, update

from experiments.db import ApiKey, Assignment, Experiment, Incentive, Variant, make_engine
from experiments.services import accounts, catalog, demo_data, serving_cache

EXPERIMENT = {
    "key": "cache-check",
    "name": "Cache check",
    "variants": [
        {"key": "control", "weight": 0.5, "incentive": None},
        {"key": "ten", "weight": 0.5, "incentive": "discount_10"},
    ],
    "metrics": {"primary": "conversion"},
}


@pytest.fixture
def keys(app) -> dict[str, str]:
    with app.extensions["liftlab.sessions"].begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        out = {}
        for name, scopes in (("admin", ["admin"]), ("app", ["assign"])):
            _, out[name] = accounts.create_api_key(
                session, name=name, scopes=scopes, actor="test", account_id=None
            )
    return out


def call(client, path: str, key: str, json=None, method: str = "POST"):  # type: ignore[no-untyped-def]
    return client.open(
        f"/api/v1{path}", method=method, json=json, headers={"Authorization": f"Bearer {key}"}
    )


def start(client, keys, spec=EXPERIMENT) -> None:  # type: ignore[no-untyped-def]
    assert call(client, "/experiments", keys["admin"], spec).status_code == 201
    status = call(
        client, f"/experiments/{spec['key']}/status", keys["admin"], {"status": "running"}
    )
    assert status.status_code == 200, status.get_json()


def variants_of(client, keys, units) -> list[list[str]]:  # type: ignore[no-untyped-def]
    out = []
    for unit in units:
        body = call(client, "/assign", keys["app"], {"unit_id": unit}).get_json()
        out.append([a["variant"] for a in body["assignments"]])
    return out


def outside_sql(db_url: str, *statements) -> None:  # type: ignore[no-untyped-def]
    """Change the database through another engine, as another process or a DBA would."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(statement)
    finally:
        engine.dispose()


def test_one_request_costs_three_statements_and_two_when_sticky(client, keys, app) -> None:
    start(client, keys)
    variants_of(client, keys, ["warm-up"])  # fills the cache and refreshes last_used_at
    seen: list[str] = []
    engine = app.extensions["liftlab.engine"]

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        variants_of(client, keys, ["new-unit"])
        new_unit = list(seen)
        seen.clear()
        variants_of(client, keys, ["new-unit"])
        sticky = list(seen)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # the API key, the serving rows, the stored exposures, and the insert of the new one
    assert new_unit == ["SELECT", "SELECT", "SELECT", "INSERT"]
    assert sticky == ["SELECT", "SELECT", "SELECT"]


def test_edits_made_outside_the_app_are_served_from_the_next_request(
    client, keys, app, db_url
) -> None:
    start(client, keys)
    units = [f"u{i}" for i in range(60)]
    before = variants_of(client, keys, units)
    assert {v[0] for v in before} == {"control", "ten"}
    # weights changed straight in SQL: new units all go to "ten", assigned ones stay put
    outside_sql(
        db_url,
        update(Variant).where(Variant.key == "control").values(weight=0.0),
        update(Variant).where(Variant.key == "ten").values(weight=1.0),
    )
    assert variants_of(client, keys, units) == before
    assert variants_of(client, keys, [f"new{i}" for i in range(30)]) == [["ten"]] * 30
    # the incentive's parameters change: the payload served changes with them
    outside_sql(
        db_url, update(Incentive).where(Incentive.key == "discount_10").values(params={"p": 11})
    )
    body = call(client, "/assign", keys["app"], {"unit_id": "new-x"}).get_json()
    assert body["assignments"][0]["incentive"]["params"] == {"p": 11}
    # stopped outside the app: nobody is served, not even the assigned units
    outside_sql(db_url, update(Experiment).values(status="stopped"))
    assert variants_of(client, keys, units[:5] + ["new-y"]) == [[]] * 6
    features = call(client, "/features", keys["app"], method="GET").get_json()
    assert features["features"] == {}


def test_a_started_experiment_is_served_at_once(client, keys) -> None:
    start(client, keys)
    assert variants_of(client, keys, ["a"]) != [[]]
    second = {**EXPERIMENT, "key": "second", "name": "Second"}
    start(client, keys, second)
    body = call(client, "/assign", keys["app"], {"unit_id": "b"}).get_json()
    assert [a["experiment"] for a in body["assignments"]] == ["cache-check", "second"]


def test_compiles_only_when_the_serving_rows_change(client, keys, db_url, monkeypatch) -> None:
    start(client, keys)
    compiled = []
    original = serving_cache.compile_rows

    def counting(rows):  # type: ignore[no-untyped-def]
        compiled.append(len(rows))
        return original(rows)

    monkeypatch.setattr(serving_cache, "compile_rows", counting)
    variants_of(client, keys, [f"u{i}" for i in range(20)])
    assert len(compiled) <= 1  # this test's rows differ from the cache another test left, or not
    compiled.clear()
    variants_of(client, keys, [f"v{i}" for i in range(20)])
    assert compiled == []
    outside_sql(db_url, update(Variant).where(Variant.key == "ten").values(name="Ten percent"))
    variants_of(client, keys, [f"w{i}" for i in range(20)])
    assert compiled == [2]


def test_a_cached_payload_cannot_be_changed_by_a_caller(app, keys, client) -> None:
    from experiments.services import assignments

    start(client, keys)
    with app.extensions["liftlab.sessions"].begin() as session:
        served = [s for i in range(100) for s in assignments.assign(session, f"p{i}")]
        ten = [s for s in served if s.variant == "ten"]
        ten[0].incentive["params"]["percent"] = 99  # type: ignore[index]
        again = [s for i in range(100) for s in assignments.assign(session, f"q{i}")]
    again_ten = [s for s in again if s.variant == "ten"]
    assert again_ten and ten[1:]
    for s in again_ten + ten[1:]:
        assert s.incentive == ten[1].incentive and s.incentive["params"]["percent"] != 99  # type: ignore[index]


def test_api_key_last_used_at_is_refreshed_at_most_once_a_minute(client, keys, app, db_url) -> None:
    start(client, keys)

    def last_used() -> dt.datetime | None:
        with app.extensions["liftlab.sessions"]() as session:
            return session.scalar(select(ApiKey.last_used_at).where(ApiKey.name == "app"))

    assert last_used() is None
    variants_of(client, keys, ["a"])
    first = last_used()
    assert first is not None
    variants_of(client, keys, ["b", "c"])
    assert last_used() == first  # within the minute: no write
    outside_sql(
        db_url,
        update(ApiKey)
        .where(ApiKey.name == "app")
        .values(last_used_at=first - dt.timedelta(minutes=2)),
    )
    variants_of(client, keys, ["d"])
    assert last_used() > first - dt.timedelta(seconds=1)
    with app.extensions["liftlab.sessions"]() as session:
        assert session.scalar(text("SELECT count(*) FROM assignments")) == 4
        assert session.scalar(select(Assignment.unit_id).where(Assignment.unit_id == "d")) == "d"


def test_a_first_exposure_won_by_a_concurrent_request_is_the_one_served(
    app, keys, client, monkeypatch
) -> None:
    from experiments.services import assignments

    start(client, keys)
    sessions = app.extensions["liftlab.sessions"]
    with sessions.begin() as session:
        first = assignments.assign(session, "racer")[0]
    other = "ten" if first.variant == "control" else "control"
    won_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with sessions.begin() as session:  # the concurrent request's row, with the other variant
        session.execute(
            update(Assignment)
            .where(Assignment.unit_id == "racer")
            .values(
                variant_id=select(Variant.id).where(Variant.key == other).scalar_subquery(),
                first_exposure_at=won_at,
            )
        )
    real_stored = assignments._stored
    calls = []

    def stored_before_the_other_insert(session, experiment_ids, unit_ids):  # type: ignore[no-untyped-def]
        calls.append(unit_ids)
        return {} if len(calls) == 1 else real_stored(session, experiment_ids, unit_ids)

    monkeypatch.setattr(assignments, "_stored", stored_before_the_other_insert)
    with sessions.begin() as session:
        served = assignments.assign(session, "racer")[0]
    assert (served.variant, served.first_exposure_at) == (other, won_at)
    assert len(calls) == 2  # the insert found the row taken and read back the winner
    with sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM assignments")) == 1
