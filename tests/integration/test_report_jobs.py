"""Queued report builds (``experiments.services.report_jobs``, ``experiments.jobs.report_worker``)
on SQLite and PostgreSQL: one build per job however many workers race for the queue; a failed
build is recorded and keeps the last good report; a job whose worker died is failed, not lost;
``liftlab report-worker --once`` builds what is queued."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from experiments.db import AuditEntry, ReportJob, make_engine, make_session_factory, utcnow
from experiments.errors import ConflictError, NotFoundError, ValidationError
from experiments.jobs import report_worker
from experiments.services import report_jobs, reporting

KEY = "queued-report"


@pytest.fixture
def sessions(db_url, report_experiment):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        report_experiment(session, KEY)
    yield factory
    engine.dispose()


def queue(sessions, **options) -> int:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        return report_jobs.request_report(session, KEY, actor="test", **options).id


def test_a_queued_job_is_built_once_and_recorded(sessions, tmp_path: Path) -> None:
    first = queue(sessions, k_min=50)
    assert queue(sessions, k_min=50) == first  # the same options queued: that job
    second = queue(sessions, k_min=60, dp_epsilon=1.5)
    assert second != first
    with sessions() as session:
        assert report_jobs.latest_job(session, KEY).id == second
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "report.request")
        ).all()
        assert [e.after["job"] for e in entries] == [first, second]

    assert report_worker.drain(sessions, tmp_path, worker="w1") == 2
    with sessions() as session:
        jobs = session.scalars(select(ReportJob).order_by(ReportJob.id)).all()
        assert [(j.status, j.worker, j.error) for j in jobs] == [("done", "w1", None)] * 2
        assert all(j.requested_at <= j.started_at <= j.finished_at for j in jobs)
        stored = reporting.stored(session, KEY, artifact_dir=tmp_path)
    assert stored["privacy"]["k_min"] == 60  # jobs run oldest first: the last one is stored
    assert stored["data_quality"]["n_units"] == 400
    assert queue(sessions, k_min=50) not in (first, second)  # a done job is not reused


def test_bad_options_and_unknown_experiments_write_nothing(sessions) -> None:
    for options, field in (
        ({"k_min": 0}, "k_min"),
        ({"k_min": 2.5}, "k_min"),
        ({"dp_epsilon": 0.0}, "epsilon"),
        ({"dp_epsilon": float("inf")}, "epsilon"),
        ({"dp_epsilon": float("nan")}, "epsilon"),
    ):
        with sessions.begin() as session, pytest.raises(ValidationError) as caught:
            report_jobs.request_report(session, KEY, actor="test", **options)
        assert caught.value.field == field, options
    with sessions.begin() as session, pytest.raises(NotFoundError):
        report_jobs.request_report(session, "nope", actor="test")
    with sessions() as session:
        assert session.scalars(select(ReportJob)).all() == []
        with pytest.raises(NotFoundError):
            report_jobs.describe(session, 1)


def test_workers_racing_for_the_queue_build_each_job_once(
    sessions, tmp_path: Path, monkeypatch
) -> None:
    jobs = [queue(sessions, k_min=k) for k in range(50, 56)]
    built: Counter[int] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def fake_generate(session, key, *, artifact_dir, k_min, dp_epsilon):  # type: ignore[no-untyped-def]
        with lock:
            built[k_min] += 1

    monkeypatch.setattr(reporting, "generate", fake_generate)
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            barrier.wait()
            report_worker.drain(sessions, tmp_path, worker=name)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert built == Counter({k: 1 for k in range(50, 56)})
    with sessions() as session:
        statuses = {j.id: j.status for j in session.scalars(select(ReportJob))}
    assert statuses == {j: "done" for j in jobs}


def test_a_failed_build_is_recorded_and_keeps_the_last_report(
    sessions, tmp_path: Path, monkeypatch
) -> None:
    queue(sessions, k_min=50)
    report_worker.drain(sessions, tmp_path)
    path = reporting.report_path(tmp_path, KEY)
    before = path.read_bytes()

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the population file is unreadable")

    monkeypatch.setattr(reporting, "generate", broken)
    failed = queue(sessions, k_min=80)
    assert report_worker.work_once(sessions, tmp_path, worker="w") == failed
    with sessions() as session:
        job = report_jobs.get_job(session, failed)
        assert job.status == "failed" and job.finished_at is not None
        assert job.error == "RuntimeError: the population file is unreadable"
        assert json.loads(path.read_bytes()) == json.loads(before)  # the last good one
        assert report_jobs.describe(session, failed)["error"] == job.error
    with sessions.begin() as session, pytest.raises(ConflictError):
        report_jobs.finish(session, failed)  # an outcome is recorded once
    assert report_worker.work_once(sessions, tmp_path) is None  # nothing left queued


def test_a_job_whose_worker_died_is_failed_not_lost(sessions) -> None:
    stuck = queue(sessions, k_min=50)
    with sessions.begin() as session:
        assert report_jobs.claim_next(session, "dead-worker").id == stuck
    waiting = queue(sessions, k_min=50)  # the running one has the same options: reused
    assert waiting == stuck
    later = utcnow() + report_jobs.STALE_AFTER + dt.timedelta(minutes=1)
    fresh = queue(sessions, k_min=51)
    with sessions.begin() as session:
        claimed = report_jobs.claim_next(session, "w2", now=later)
        assert claimed.id == fresh
    with sessions() as session:
        job = report_jobs.get_job(session, stuck)
        assert job.status == "failed" and "the worker stopped while building" in job.error


def test_the_cli_worker_builds_what_is_queued(run, db_url, report_experiment, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        report_experiment(session, KEY)
        job = report_jobs.request_report(session, KEY, actor="test").id
    result = run("report-worker", "--once")
    assert result.exit_code == 0, result.output
    assert "1 report job(s) handled" in result.output
    with factory() as session:
        assert report_jobs.get_job(session, job).status == "done"
    engine.dispose()
    assert reporting.report_path(tmp_path / "instance" / "artifacts", KEY).exists()
    bad = run("report-worker", "--poll-seconds", "0")
    assert bad.exit_code == 2 and "--poll-seconds" in bad.output


def test_serve_runs_a_report_worker_beside_the_server(
    db_url, report_experiment, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """``liftlab serve``'s child worker builds a job queued while it runs, and stops on SIGTERM."""
    from experiments.cli.serve import report_worker_process

    monkeypatch.setenv("LIFTLAB_DATABASE_URL", db_url)
    monkeypatch.setenv("LIFTLAB_INSTANCE_DIR", str(tmp_path / "instance"))
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        report_experiment(session, KEY)
    with report_worker_process() as child:
        job = queue(factory)

        def status() -> str:
            with factory() as session:
                return report_jobs.get_job(session, job).status

        _wait(lambda: status() not in ("queued", "running"), seconds=300)
        assert child.poll() is None  # still serving
    assert status() == "done"
    assert child.returncode == 0  # SIGTERM: a clean stop
    engine.dispose()
    with report_worker_process(enabled=False) as none:
        assert none is None


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, seconds: float = 120.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it holds or ``seconds`` pass (a wait, not a speed check)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_stopping_liftlab_serve_stops_its_report_worker(db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM (a service manager's stop) ends ``liftlab serve`` and the worker it started."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "LIFTLAB_DATABASE_URL": db_url, "LIFTLAB_INSTANCE_DIR": str(tmp_path)}
    code = "from experiments.cli import main; main()"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").status == 200
            except OSError:
                return False

        assert _wait(up) and _wait(lambda: len(_children(server.pid)) == 1)
        (worker,) = _children(server.pid)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 128 + signal.SIGTERM
        assert _wait(lambda: not _alive(worker))
    finally:
        if server.poll() is None:
            server.kill()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_worker_given_its_parent_pid_stops_when_its_parent_dies(db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    env = {**os.environ, "LIFTLAB_DATABASE_URL": db_url, "LIFTLAB_INSTANCE_DIR": str(tmp_path)}
    worker_cmd = [sys.executable, "-m", "experiments.jobs.report_worker", "--poll-seconds", "0.2"]
    # a parent that starts the worker, prints its pid and dies without stopping it (SIGKILL-like)
    parent_code = (
        "import os, subprocess, sys; "
        f"p = subprocess.Popen({worker_cmd!r} + ['--parent-pid', str(os.getpid())], "
        "stderr=subprocess.DEVNULL); "
        "print(p.pid, flush=True); os._exit(0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", parent_code], env=env, capture_output=True, text=True, check=True
    )
    worker = int(out.stdout.split()[0])
    try:
        assert _wait(lambda: not _alive(worker))
    finally:
        if _alive(worker):
            os.kill(worker, 9)
