"""``liftlab serve``: the admin and API on the embedded server (gunicorn in production), with a
report worker beside it (its own process: a web worker never loads torch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click


@contextmanager
def report_worker_process(enabled: bool = True) -> Iterator[subprocess.Popen[bytes] | None]:
    """``liftlab report-worker`` as a child process while the block runs (stopped after it)."""
    if not enabled:
        yield None
        return
    # --parent-pid: should this process die without stopping it (SIGKILL), it stops too
    child = subprocess.Popen(
        [sys.executable, "-m", "experiments.jobs.report_worker", "--parent-pid", str(os.getpid())]
    )
    try:
        yield child
    finally:
        child.terminate()  # SIGTERM: the build in progress finishes, then it exits
        try:
            child.wait(timeout=600)
        except subprocess.TimeoutExpired:
            child.kill()


def run_server(host: str, port: int, report_worker: bool = True) -> None:
    from werkzeug.serving import run_simple

    from web import create_app

    app = create_app()
    click.echo(f"serving the admin on http://{host}:{port}/  (Ctrl-C stops)")
    # threaded werkzeug is enough for the embedded, single-team mode; production runs
    # `gunicorn -c platform/gunicorn.conf.py "web:create_app()"` and `liftlab report-worker`
    # SIGTERM (a service manager's stop) ends the server like Ctrl-C, so that the report worker
    # is stopped too; by default SIGTERM would end this process and leave the worker running
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with report_worker_process(report_worker):
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option(
    "--no-report-worker",
    is_flag=True,
    help="Do not start the report worker (reports queued in the admin wait for one).",
)
def serve(host: str, port: int, no_report_worker: bool) -> None:
    """Serve the admin and the REST API, and build the reports queued there."""
    run_server(host, port, report_worker=not no_report_worker)
