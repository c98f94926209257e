"""The report worker: builds the causal reports the admin and the API queue.

Layer: jobs (services and the database; torch, DoWhy and EconML load when the first report is
built, in this process, never in a web worker). Run it as ``liftlab report-worker`` or::

    python -m experiments.jobs.report_worker --poll-seconds 5

(the compose file's ``report-worker``; ``liftlab serve`` starts one beside the embedded server).
Each job takes three transactions (``experiments.services.report_jobs``): the claim, committed
before the build so that other workers skip the job; the build, which writes the report file
atomically and nothing to the database; the outcome, ``done`` or ``failed`` with the error. A
failing build leaves the last good report in place. SIGTERM or SIGINT stops the loop after the
build in progress; logs are one JSON object per line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from experiments.jobs.scheduler import install_stop_handlers, log_event, run_loop

log = logging.getLogger("liftlab.report_worker")


def _event(event: str, **fields: object) -> None:
    log_event(log, event, **fields)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work_once(
    sessions: sessionmaker[Session], artifact_dir: Path, worker: str | None = None
) -> int | None:
    """Claim the oldest queued report job and build it; its id, or None when none was queued."""
    from experiments.db import Experiment
    from experiments.services import report_jobs, reporting

    with sessions.begin() as session:
        job = report_jobs.claim_next(session, worker or worker_name())
        if job is None:
            return None
        job_id, k_min, epsilon = job.id, job.k_min, job.dp_epsilon
        experiment = session.get(Experiment, job.experiment_id)
        key = experiment.key if experiment is not None else ""
    _event("report_started", job=job_id, experiment=key)
    started = time.perf_counter()
    error = None
    try:
        with sessions() as session:
            reporting.generate(
                session, key, artifact_dir=artifact_dir, k_min=k_min, dp_epsilon=epsilon
            )
            session.rollback()  # a build writes the report file, nothing to the database
    except Exception as exc:  # noqa: BLE001 - any failure is the job's outcome, recorded on it
        error = f"{exc.__class__.__name__}: {exc}"
    with sessions.begin() as session:
        report_jobs.finish(session, job_id, error=error)
    _event(
        "report_failed" if error else "report_done",
        job=job_id,
        experiment=key,
        seconds=round(time.perf_counter() - started, 3),
        **({"error": error[:300]} if error else {}),
    )
    return job_id


def drain(
    sessions: sessionmaker[Session],
    artifact_dir: Path,
    worker: str | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Build every queued job, oldest first, until none is left or ``stop`` is set; returns how
    many were built (or failed)."""
    done = 0
    while not (stop is not None and stop.is_set()):
        if work_once(sessions, artifact_dir, worker) is None:
            break
        done += 1
    return done


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.jobs.report_worker",
        description="Build the causal reports queued by the admin and the API.",
    )
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument("--once", action="store_true", help="build what is queued, then exit")
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="stop once this process is no longer the parent (liftlab serve passes its own pid)",
    )
    args = parser.parse_args(argv)
    if args.poll_seconds <= 0:
        parser.error("--poll-seconds must be positive")
    return args


def serve_reports(poll_seconds: float, once: bool, parent_pid: int | None = None) -> int:
    """The worker loop on the configured database and artifact folder; returns jobs built.
    With ``parent_pid`` the loop stops once that process is no longer this one's parent (it
    died, even by SIGKILL: this process was re-parented)."""
    from experiments.db import make_engine, make_session_factory
    from experiments.settings import load_settings

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))  # messages are JSON already
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        install_stop_handlers(stop, log)
    settings = load_settings()
    engine = make_engine(settings.database_url, pool_pre_ping=True)
    sessions = make_session_factory(engine)
    built = 0

    def one_pass() -> None:
        nonlocal built
        if parent_pid is not None and os.getppid() != parent_pid:
            _event("parent_gone", parent=parent_pid)
            stop.set()
            return
        built += drain(sessions, settings.artifact_dir, stop=stop)

    _event("started", poll_seconds=poll_seconds, database=engine.dialect.name)
    try:
        run_loop(one_pass, poll_seconds, stop, max_passes=1 if once else None)
    finally:
        engine.dispose()
    _event("stopped", built=built)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    serve_reports(args.poll_seconds, args.once, args.parent_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
