"""Scheduled refreshes: recompute the results of every running experiment every N minutes.

Layer: jobs (services and the database; no Flask, no torch). The compose file's ``worker`` runs::

    python -m experiments.jobs.scheduler --interval-minutes 15

Each experiment is refreshed in its own transaction (``experiments.services.results.refresh``),
so one failing experiment is logged and skipped, never blocking the others. SIGTERM or SIGINT
stops the loop: a refresh in progress finishes and commits, no new one starts, the engine is
disposed and the process exits 0. Logs are one JSON object per line on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("liftlab.scheduler")


@dataclass
class RefreshReport:
    """One pass: n_units per refreshed experiment, the error of each one that failed."""

    refreshed: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def log_event(logger: logging.Logger, event: str, **fields: object) -> None:
    """One JSON object per line: the time, the event and its fields."""
    logger.info(json.dumps({"ts": dt.datetime.now(dt.UTC).isoformat(), "event": event, **fields}))


def _event(event: str, **fields: object) -> None:
    log_event(log, event, **fields)


def refresh_once(
    sessions: sessionmaker[Session], *, actor: str = "scheduler", as_of: dt.datetime | None = None
) -> RefreshReport:
    """Refresh every running experiment once, each in its own transaction."""
    from experiments.services import results
    from experiments.services.experiments import list_experiments

    started = time.perf_counter()
    report = RefreshReport()
    with sessions() as session:
        keys = [e.key for e in list_experiments(session, status="running")]
    for key in keys:
        try:
            with sessions.begin() as session:
                data = results.refresh(session, key, actor=actor, as_of=as_of)
        except Exception as exc:  # noqa: BLE001 - one broken experiment must not stop the others
            report.failed[key] = f"{exc.__class__.__name__}: {str(exc)[:300]}"
            _event("refresh_failed", experiment=key, error=report.failed[key])
            continue
        report.refreshed[key] = int(data.get("n_units", 0))
    report.seconds = time.perf_counter() - started
    _event(
        "refresh_pass",
        refreshed=report.refreshed,
        failed=sorted(report.failed),
        seconds=round(report.seconds, 3),
    )
    return report


def run_loop(
    one_pass: Callable[[], object],
    interval_s: float,
    stop: threading.Event,
    *,
    max_passes: int | None = None,
) -> int:
    """Call ``one_pass`` now and then every ``interval_s`` until ``stop`` is set; return passes."""
    passes = 0
    while not stop.is_set():
        one_pass()
        passes += 1
        if max_passes is not None and passes >= max_passes:
            break
        stop.wait(interval_s)  # wakes at once on SIGTERM
    return passes


def install_stop_handlers(stop: threading.Event, logger: logging.Logger = log) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log_event(logger, "stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.jobs.scheduler",
        description="Refresh the results of every running experiment every N minutes.",
    )
    parser.add_argument("--interval-minutes", type=float, default=15.0)
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    if args.interval_minutes <= 0:
        parser.error("--interval-minutes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from experiments.db import make_engine, make_session_factory
    from experiments.settings import load_settings

    args = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))  # messages are JSON already
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    stop = threading.Event()
    install_stop_handlers(stop)
    settings = load_settings()
    engine = make_engine(settings.database_url, pool_pre_ping=True)
    sessions = make_session_factory(engine)
    _event("started", interval_minutes=args.interval_minutes, database=engine.dialect.name)
    try:
        passes = run_loop(
            lambda: refresh_once(sessions),
            args.interval_minutes * 60.0,
            stop,
            max_passes=1 if args.once else None,
        )
    finally:
        engine.dispose()
    _event("stopped", passes=passes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
