"""Vectorized validation of bulk imports (``event_frames.clean_chunk``) against the REST API's
row-by-row validator (``events.validate_event``) as the reference: every row that one accepts the
other accepts with the same normalized values, every bad row is refused by both for the same field;
and the importer's background reader (``_Prefetch``) hands over results, errors and stops early."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest

from experiments.errors import ValidationError
from experiments.services.event_frames import clean_chunk
from experiments.services.event_import import _Prefetch
from experiments.services.events import validate_event

GOOD = {
    "event_id": "ev-1",
    "unit_id": "u-1",
    "name": "order",
    "value": 12.5,
    "occurred_at": "2026-10-01T12:00:00.123456+02:00",
    "properties": {"sku": "A-1"},
}
FUTURE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
BAD_ROWS = [
    ({"event_id": ""}, "event_id"),
    ({"event_id": "   "}, "event_id"),
    ({"event_id": None}, "event_id"),
    ({"event_id": 17}, "event_id"),
    ({"unit_id": "x" * 201}, "unit_id"),
    ({"name": "n" * 101}, "name"),
    ({"unit_id": "u\x00"}, "unit_id"),
    ({"occurred_at": "2026-10-01T12:00:00"}, "occurred_at"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"occurred_at": "2026-13-01T12:00:00Z"}, "occurred_at"),
    ({"occurred_at": FUTURE}, "occurred_at"),
    ({"occurred_at": 1_700_000_000}, "occurred_at"),
    ({"value": "ten"}, "value"),
    ({"value": float("inf")}, "value"),
    ({"value": True}, "value"),
    ({"properties": [1, 2]}, "properties"),
    ({"properties": {"blob": "x" * 9000}}, "properties"),
]


def _api_field(row: dict[str, object]) -> str | None:
    try:
        validate_event(0, row)
    except ValidationError as exc:
        return exc.field.removeprefix("events[0].")
    return None


def _import_field(rows: list[dict[str, object]]) -> tuple[int, str] | None:
    try:
        clean_chunk(pd.DataFrame(rows), 0)
    except ValidationError as exc:
        row, field = exc.field.removeprefix("row ").split(".")
        return int(row), field
    return None


@pytest.mark.parametrize(("change", "field"), BAD_ROWS)
def test_each_bad_row_is_refused_for_the_same_field_as_the_api(change, field) -> None:
    bad = {**GOOD, **change}
    assert _api_field(bad) == field  # the reference agrees that this row is bad, and why
    rows = [GOOD, {**GOOD, "event_id": "ev-2"}, bad, {**GOOD, "event_id": "ev-4"}]
    assert _import_field(rows) == (3, field)


def test_good_rows_are_normalized_like_the_api() -> None:
    rng = np.random.default_rng(4)
    rows = []
    for i in range(300):
        stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=int(rng.integers(0, 10**7)), microseconds=int(rng.integers(0, 10**6))
        )
        offset = dt.timezone(dt.timedelta(minutes=int(rng.choice([-300, 0, 60, 330]))))
        rows.append(
            {
                "event_id": f'é-{i}, "quoted"\n{i}',
                "unit_id": f"u{rng.integers(0, 50)}",
                "name": str(rng.choice(["view", "order"])),
                "value": None if i % 3 else float(rng.gamma(2.0, 10.0)),
                "occurred_at": stamp.astimezone(offset).isoformat(),
                "properties": None if i % 2 else {"i": i, "tag": "x,y"},
            }
        )
    clean = clean_chunk(pd.DataFrame(rows), 0)
    for row, got in zip(rows, clean.to_dict("records"), strict=True):
        want = validate_event(0, row)
        assert got["event_id"] == want["event_id"] and got["unit_id"] == want["unit_id"]
        assert got["occurred_at"].to_pydatetime() == want["occurred_at"]
        assert (
            (got["value"] != got["value"])
            if want["value"] is None
            else got["value"] == want["value"]
        )
        assert (got["properties"] is None) == (want["properties"] is None)
        if want["properties"] is not None:
            import json

            assert json.loads(got["properties"]) == want["properties"]


def test_prefetch_hands_over_items_and_the_producer_error() -> None:
    def items():  # type: ignore[no-untyped-def]
        yield from range(5)
        raise ValueError("bad chunk")

    seen = []
    with pytest.raises(ValueError, match="bad chunk"), _Prefetch(items()) as prefetched:
        for item in prefetched:
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetch_stops_the_producer_when_the_consumer_leaves_early() -> None:
    produced = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(1000):
            produced.append(i)
            yield i

    with pytest.raises(KeyError), _Prefetch(items(), depth=1) as prefetched:
        for item in prefetched:
            if item == 2:
                raise KeyError(item)
    assert not any(t.name == "event-import" for t in threading.enumerate())
    assert len(produced) <= 5  # at most the queue's depth and one in hand beyond what was taken
