"""The refresh scheduler: one pass refreshes running experiments only, survives a failing one, and
the process stops cleanly (exit 0) on SIGTERM. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from experiments.db import Assignment, Event, ResultSnapshot, make_engine, make_session_factory
from experiments.jobs import scheduler
from experiments.services import catalog, demo_data, experiments, results

REPO = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def spec(key: str) -> dict:
    return {
        "key": key,
        "name": f"Scheduler test {key}",
        "variants": [
            {"key": "control", "weight": 0.5},
            {"key": "coupon", "weight": 0.5, "incentive": "coupon_5"},
        ],
        "metrics": {"primary": "conversion", "secondary": ["revenue"]},
        "design": {"type": "sequential", "alpha": 0.05, "n_star": 2000, "cuped": False},
    }


def populate(session, key: str, *, running: bool, n_per_arm: int = 40) -> None:  # type: ignore[no-untyped-def]
    experiments.create_experiment(session, spec(key), actor="test")
    if not running:
        return
    experiments.transition(session, key, "running", actor="test")
    experiment = experiments.get_experiment(session, key)
    rng = np.random.default_rng(len(key))
    for variant in experiment.variants:
        for i in range(n_per_arm):
            unit = f"{key}-{variant.key}-{i}"
            session.add(
                Assignment(
                    experiment_id=experiment.id,
                    unit_id=unit,
                    variant_id=variant.id,
                    first_exposure_at=T0,
                )
            )
            if rng.random() < 0.3:
                session.add(
                    Event(
                        event_id=f"{unit}-order",
                        unit_id=unit,
                        name="order",
                        value=float(rng.gamma(2.0, 30.0)),
                        occurred_at=T0 + dt.timedelta(hours=5),
                    )
                )


@pytest.fixture
def sessions(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        populate(session, "alpha", running=True)
        populate(session, "beta", running=True, n_per_arm=25)
        populate(session, "draft", running=False)
    yield factory
    engine.dispose()


def snapshot_counts(factory) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with factory() as session:
        out = {}
        for key in ("alpha", "beta", "draft"):
            experiment = experiments.get_experiment(session, key)
            out[key] = session.scalar(
                select(func.count())
                .select_from(ResultSnapshot)
                .where(ResultSnapshot.experiment_id == experiment.id)
            )
        return out


def test_one_pass_refreshes_every_running_experiment(sessions) -> None:  # type: ignore[no-untyped-def]
    report = scheduler.refresh_once(sessions)
    assert report.refreshed == {"alpha": 80, "beta": 50}
    assert report.failed == {}
    assert snapshot_counts(sessions) == {"alpha": 1, "beta": 1, "draft": 0}
    with sessions() as session:
        stored = results.latest(session, "alpha")
    assert stored is not None and stored["refreshed_by"] == "scheduler"
    assert stored["n_units"] == 80
    scheduler.refresh_once(sessions)
    assert snapshot_counts(sessions) == {"alpha": 2, "beta": 2, "draft": 0}


def test_a_failing_experiment_is_reported_and_the_others_still_refresh(
    sessions, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    real = results.refresh

    def flaky(session, key, **kwargs):  # type: ignore[no-untyped-def]
        if key == "alpha":
            session.add(ResultSnapshot(experiment_id=-1, n_units=0, results={}))  # half-written
            raise RuntimeError("warehouse timed out")
        return real(session, key, **kwargs)

    monkeypatch.setattr(results, "refresh", flaky)
    report = scheduler.refresh_once(sessions)
    assert report.refreshed == {"beta": 50}
    assert report.failed == {"alpha": "RuntimeError: warehouse timed out"}
    # the failed transaction was rolled back, nothing of it is left
    assert snapshot_counts(sessions) == {"alpha": 0, "beta": 1, "draft": 0}


def test_run_loop_stops_when_told() -> None:
    stop = threading.Event()
    calls: list[int] = []

    def one_pass() -> None:
        calls.append(1)
        if len(calls) == 3:
            stop.set()

    assert scheduler.run_loop(one_pass, 0.0, stop) == 3
    assert scheduler.run_loop(lambda: calls.append(1), 0.0, threading.Event(), max_passes=2) == 2
    assert len(calls) == 5


def test_interval_must_be_positive() -> None:
    assert scheduler.parse_args(["--interval-minutes", "0.5"]).interval_minutes == 0.5
    with pytest.raises(SystemExit):
        scheduler.parse_args(["--interval-minutes", "0"])


def test_process_exits_cleanly_on_sigterm(sessions, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIFTLAB_") or k == "LIFTLAB_SHARED_DATA"
    }
    env.update({"LIFTLAB_DATABASE_URL": db_url, "LIFTLAB_INSTANCE_DIR": str(tmp_path / "inst")})
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.jobs.scheduler", "--interval-minutes", "60"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(180, process.kill)  # never hang the suite on a stuck child
    watchdog.start()
    try:
        events = []
        assert process.stderr is not None
        for line in process.stderr:  # wait for the first pass, then the long sleep begins
            events.append(json.loads(line))
            if events[-1]["event"] == "refresh_pass":
                break
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    events += [json.loads(line) for line in rest.splitlines()]
    names = [e["event"] for e in events]
    assert names == ["started", "refresh_pass", "stopping", "stopped"], names
    assert events[1]["refreshed"] == {"alpha": 80, "beta": 50}
    assert events[2]["signal"] == "SIGTERM" and events[3]["passes"] == 1
