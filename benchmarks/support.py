"""Shared benchmark plumbing: a throw-away PostgreSQL database, free ports, a served app, a
simulated shop's uplift model and its run, and the report footer."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "LIFTLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def scratch_postgres(prefix: str = "liftlab_bench") -> Iterator[str]:
    """A new, empty PostgreSQL database for one benchmark; dropped afterwards."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gunicorn_app(url: str, instance_dir: str, workers: int = 3) -> Iterator[int]:
    """The production web app under gunicorn on a free loopback port, ready (``/healthz``).

    Yields the port; gunicorn's output goes to ``<instance_dir>/gunicorn.log``, printed to stderr
    when the body fails; the server is stopped on exit.
    """
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    port = free_port()
    env = {
        **os.environ,
        "LIFTLAB_DATABASE_URL": url,
        "LIFTLAB_INSTANCE_DIR": instance_dir,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_ACCESSLOG": "/dev/null",
        "GUNICORN_LOGLEVEL": "warning",
    }
    log_path = Path(instance_dir) / "gunicorn.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "-c",
                "platform/gunicorn.conf.py",
                "web:create_app()",
            ],
            env=env,
            cwd=Path(__file__).resolve().parents[1],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(150):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            yield port
        except BaseException:
            log.flush()
            print(log_path.read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)


def shop_model(
    folder: Any, arms: list[str], n_users: int = 20_000, **params: Any
) -> tuple[list[str], str]:
    """An ``UpliftModel`` of conversion and revenue (``params`` over the defaults, seeded) fitted
    on a simulated randomized experiment of ``n_users`` users (shop seed 4, arms ``"none"`` and
    ``arms``, assignment seed 1) and saved to ``folder``; returns (features, architecture)."""
    from experiments.simulation import simulate_shop
    from uplift import UpliftModel

    shop = simulate_shop(n_users=n_users, seed=4)
    data = shop.randomized_experiment(arms=["none", *arms], seed=1)
    data["conversion"] = data["converted"].astype(float)
    features = [c for c in shop.users.columns if c != "unit_id"]
    model = UpliftModel(**{"random_state": 0, "verbose": False, **params})
    model.fit(
        data[features],
        data["treatment"].to_numpy(),
        data[["conversion", "revenue"]],
        control="none",
    )
    model.save(folder)
    return features, model.architecture_


def register_model(session: Any, folder: Any, features: list[str], architecture: str) -> Any:
    """A succeeded ``ModelRun`` of the model saved in ``folder`` (flushed, so it has its id):
    what a strategy's ``model_run_id`` names."""
    from experiments.db import ModelRun

    run = ModelRun(
        architecture=architecture,
        status="succeeded",
        artifact_path=str(folder),
        metrics={"features": features},
    )
    session.add(run)
    session.flush()
    return run


def footer(script: str, argv: list[str] | None) -> list[str]:
    """The report's last lines: the machine, and the command that produced it."""
    import sys

    from benchmarks.assignment import machine

    args = argv if argv is not None else sys.argv[1:]
    return [
        "",
        f"Machine: {machine()}.",
        "",
        f"Command: `{' '.join(['.venv/bin/python', f'benchmarks/{script}', *args])}`",
    ]
