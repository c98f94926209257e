"""Bulk event import: exactly once (re-run, interrupted and resumed, concurrent), bad files refused
with the row and column named and the database unchanged. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from experiments.db import Event, make_engine
from experiments.errors import ValidationError
from experiments.services.event_import import import_events


def make_events(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-10-01T00:00:00Z")
    return pd.DataFrame(
        {
            "event_id": [f"ev-{i:07d}" for i in range(n)],
            "unit_id": [f"u{u}" for u in rng.integers(0, n // 5 + 1, n)],
            "name": rng.choice(["view", "add_to_cart", "order"], n),
            "value": np.where(rng.random(n) < 0.5, rng.gamma(2.0, 20.0, n).round(2), np.nan),
            "occurred_at": [
                (start + pd.Timedelta(seconds=int(s))).isoformat().replace("+00:00", "Z")
                for s in rng.integers(0, 86400 * 30, n)
            ],
        }
    )


def count(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.scalar(select(func.count()).select_from(Event))
            distinct = connection.scalar(select(func.count(func.distinct(Event.event_id))))
            return int(rows), int(distinct)
    finally:
        engine.dispose()


def test_import_twice_and_duplicates_in_file(db_url: str, tmp_path: Path) -> None:
    frame = make_events(3000)
    path = tmp_path / "events.csv"
    pd.concat([frame, frame.iloc[:100]]).to_csv(path, index=False)
    engine = make_engine(db_url)
    try:
        first = import_events(engine, path, chunk_size=1000)
        assert (first.rows, first.inserted) == (3100, 3000)
        again = import_events(engine, path, chunk_size=1000)
        assert again.inserted == 0
        with engine.connect() as connection:
            stored = connection.execute(
                select(Event.event_id, Event.value, Event.occurred_at).order_by(Event.event_id)
            ).all()
    finally:
        engine.dispose()
    assert [r.event_id for r in stored] == list(frame["event_id"])
    values = np.array([np.nan if r.value is None else r.value for r in stored])
    np.testing.assert_allclose(values, frame["value"].to_numpy(), equal_nan=True)
    assert stored[0].occurred_at == dt.datetime.fromisoformat(
        frame["occurred_at"].iloc[0].replace("Z", "+00:00")
    )


def test_interrupted_import_resumes_exactly_once(db_url: str, tmp_path: Path) -> None:
    frame = make_events(4000, seed=1)
    path = tmp_path / "events.parquet"
    frame.assign(occurred_at=pd.to_datetime(frame["occurred_at"], utc=True)).to_parquet(path)

    class KilledError(Exception):
        pass

    def die_after_two_chunks(done: int, total: int) -> None:
        if done >= 2000:
            raise KilledError

    engine = make_engine(db_url)
    try:
        with pytest.raises(KilledError):
            import_events(engine, path, chunk_size=1000, progress=die_after_two_chunks)
        assert count(db_url) == (2000, 2000)
        resumed = import_events(engine, path, chunk_size=1000)
    finally:
        engine.dispose()
    assert resumed.inserted == 2000
    assert count(db_url) == (4000, 4000)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda f: f.assign(occurred_at=f["occurred_at"].str.replace("Z", "", regex=False)),
            "row 1.occurred_at",
        ),
        (
            lambda f: f.assign(value=f["value"].astype(object).where(f.index != 1500, "ten")),
            "row 1501.value",
        ),
        (
            lambda f: f.assign(event_id=f["event_id"].where(f.index != 2999, "")),
            "row 3000.event_id",
        ),
        (
            lambda f: f.assign(occurred_at=f["occurred_at"].where(f.index != 2500, "2099-01-01Z")),
            "row 2501.occurred_at",
        ),
        (
            lambda f: f.assign(unit_id=f["unit_id"].where(f.index != 10, "u\x00")),
            "row 11.unit_id",
        ),
        (
            lambda f: f.assign(
                properties=np.where(f.index == 2001, '{"x": "' + "y" * 9000 + '"}', None)
            ),
            "row 2002.properties",
        ),
        (lambda f: f.drop(columns=["unit_id"]), "unit_id"),
        (lambda f: f.assign(colour="red"), "colour"),
    ],
)
def test_bad_file_is_refused_and_nothing_written(
    db_url: str, tmp_path: Path, change, field
) -> None:
    path = tmp_path / "bad.csv"
    change(make_events(3000)).to_csv(path, index=False)
    engine = make_engine(db_url)
    try:
        with pytest.raises(ValidationError) as error:
            import_events(engine, path, chunk_size=1000)
    finally:
        engine.dispose()
    assert error.value.field == field
    assert count(db_url) == (0, 0)


def test_stored_rows_equal_the_file_to_the_microsecond(db_url: str, tmp_path: Path) -> None:
    # awkward text for CSV/COPY: separators, quotes, newlines, a lone "\\.", non-ASCII; offsets
    texts = ["plain", 'a,"b"', "line\nbreak", "\\.", "é😀", "  padded  ", "back\\slash"]
    rows = []
    for i in range(700):
        offset = dt.timezone(dt.timedelta(minutes=(-330, 0, 60, 525)[i % 4]))
        stamp = dt.datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=dt.UTC) + dt.timedelta(
            seconds=7919 * i, microseconds=13 * i
        )
        rows.append(
            {
                "event_id": f"{texts[i % len(texts)]}-{i}",
                "unit_id": texts[(i // 7) % len(texts)],
                "name": ("view", "order", "x,y")[i % 3],
                "value": np.nan if i % 5 == 0 else (i * 0.1) ** 3 - 1e-9,
                "occurred_at": stamp.astimezone(offset).isoformat(),
                "properties": None if i % 2 else json.dumps({"i": i, "text": texts[i % 7]}),
            }
        )
    path = tmp_path / "events.jsonl"  # json.dumps writes floats exactly (pandas rounds them)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows).replace("NaN", "null"))
    engine = make_engine(db_url)
    try:
        result = import_events(engine, path, chunk_size=256)
        with engine.connect() as connection:
            stored = {
                r.event_id: r
                for r in connection.execute(
                    select(
                        Event.event_id,
                        Event.unit_id,
                        Event.name,
                        Event.value,
                        Event.occurred_at,
                        Event.properties,
                        Event.received_at,
                    )
                )
            }
    finally:
        engine.dispose()
    assert (result.rows, result.inserted, result.chunks) == (700, 700, 3)
    assert len(stored) == 700
    for row in rows:
        got = stored[row["event_id"]]
        assert (got.unit_id, got.name) == (row["unit_id"], row["name"])
        assert got.occurred_at == dt.datetime.fromisoformat(row["occurred_at"])
        if row["value"] != row["value"]:
            assert got.value is None
        else:
            assert got.value == row["value"]  # exact: no float formatting loss on the way
        expected = None if row["properties"] is None else json.loads(row["properties"])
        assert got.properties == expected
    assert len({r.received_at for r in stored.values()}) == 1


@pytest.mark.parametrize("workers", [1, 3])
def test_overlapping_file_adds_only_the_new_events(
    db_url: str, tmp_path: Path, workers: int
) -> None:
    frame = make_events(4000, seed=3)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    frame.iloc[:2000].to_csv(first, index=False)
    frame.iloc[1000:].sample(frac=1.0, random_state=0).to_csv(second, index=False)
    engine = make_engine(db_url)
    try:
        assert import_events(engine, first, chunk_size=700).inserted == 2000
        # chunks of 1500 shuffled rows each mix stored and new ids
        again = import_events(engine, second, chunk_size=1500, workers=workers)
    finally:
        engine.dispose()
    assert (again.rows, again.inserted, again.duplicates) == (3000, 2000, 1000)
    assert count(db_url) == (4000, 4000)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        (("--chunk-size", "20000"), ("--chunk-size", "20000")),
        # different chunks and ranges: the importers' rows interleave, waits and deadlocks happen
        (("--chunk-size", "20000", "--workers", "3"), ("--chunk-size", "7000", "--workers", "1")),
    ],
)
def test_two_processes_importing_the_same_events_store_each_once(
    tmp_path: Path, options: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    # PostgreSQL only: SQLite serializes writers, so there is no race to check there
    from experiments.db.migrate import upgrade
    from tests.conftest import fresh_database

    with fresh_database("postgresql", tmp_path) as db_url:
        upgrade(db_url)
        _race_two_importers(db_url, tmp_path, options)


def _race_two_importers(
    db_url: str, tmp_path: Path, options: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    path = tmp_path / "events.csv"
    make_events(100_000, seed=2).sample(frac=1.0, random_state=2).to_csv(path, index=False)
    env = {**os.environ, "LIFTLAB_DATABASE_URL": db_url, "LIFTLAB_INSTANCE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "experiments.cli", "events", "import", str(path)]
    processes = [
        subprocess.Popen(
            [*command, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for extra in options
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert count(db_url) == (100_000, 100_000)
    new = sorted(int(out.split(": ")[1].split(" new")[0].replace(",", "")) for out, _ in outputs)
    assert sum(new) == 100_000
