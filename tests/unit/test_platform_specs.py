"""Operations files: the compose file is well-formed YAML with the expected services and wiring
(Docker is not available here, so it is validated, not run); the torchrun launch spec passes
arguments the training job accepts; ``platform/`` stays a non-package."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from experiments.jobs import report_worker, scheduler, train_distributed

PLATFORM = Path(__file__).resolve().parents[2] / "platform"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PLATFORM / "compose.yaml").read_text())


def test_compose_has_the_services_and_their_order(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"db", "migrate", "web", "worker", "report-worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["command"] == ["python", "-m", "experiments.cli", "db", "upgrade"]
    for name in ("web", "worker", "report-worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    declared = set(compose["volumes"])
    for service in services.values():
        for mount in service.get("volumes", []):
            assert mount.split(":")[0] in declared, mount


def test_web_runs_gunicorn_with_multiprocess_metrics(compose: dict) -> None:
    web = compose["services"]["web"]
    command = " ".join(web["command"])
    assert 'gunicorn -c platform/gunicorn.conf.py "web:create_app()"' in command
    env = web["environment"]
    folder = env["PROMETHEUS_MULTIPROC_DIR"]
    assert folder in web["tmpfs"]
    assert 'rm -rf "$$PROMETHEUS_MULTIPROC_DIR"/*' in command  # starts empty
    assert env["GUNICORN_ACCESSLOG"] == "/dev/null"  # the app logs requests as JSON itself
    # merged from the shared block, not lost by the override
    assert env["LIFTLAB_DATABASE_URL"].startswith("postgresql+psycopg://liftlab:")
    assert "@db:5432/liftlab" in env["LIFTLAB_DATABASE_URL"]
    assert "/readyz" in " ".join(web["healthcheck"]["test"])
    assert all(port.startswith("127.0.0.1:") for port in web["ports"])
    assert (PLATFORM.parent / web["build"]["dockerfile"]).is_file()


def test_worker_runs_the_scheduler_and_stops_on_sigterm(compose: dict) -> None:
    worker = compose["services"]["worker"]
    command = worker["command"]
    assert command[:3] == ["python", "-m", "experiments.jobs.scheduler"]
    assert worker["stop_signal"] == "SIGTERM"
    interval = command[command.index("--interval-minutes") + 1]
    default = re.fullmatch(r"\$\{LIFTLAB_REFRESH_MINUTES:-(\d+)\}", interval)
    assert default, interval
    args = scheduler.parse_args([*command[3:-1], default.group(1)])
    assert args.interval_minutes == 15.0


def test_report_worker_builds_queued_reports_and_stops_on_sigterm(compose: dict) -> None:
    worker = compose["services"]["report-worker"]
    command = worker["command"]
    assert command[:3] == ["python", "-m", "experiments.jobs.report_worker"]
    assert report_worker.parse_args(command[3:]).poll_seconds == 5.0
    assert worker["stop_signal"] == "SIGTERM"
    env = worker["environment"]  # the shared block merged, not lost by the override
    assert "@db:5432/liftlab" in env["LIFTLAB_DATABASE_URL"] and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert worker["volumes"] == compose["services"]["web"]["volumes"]  # the same artifacts


def test_compose_interpolations_are_well_formed() -> None:
    text = (PLATFORM / "compose.yaml").read_text()
    variables = re.findall(r"(?<!\$)\$\{([^}]*)\}", text)
    assert variables
    for variable in variables:
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*(:[-?].*)?", variable), variable
    assert "POSTGRES_PASSWORD:?" in text  # refuses to start without a password


def test_torchrun_spec_passes_arguments_the_job_accepts() -> None:
    script = (PLATFORM / "torchrun" / "train-uplift.sh").read_text()
    command = shlex.split(script[script.index("exec torchrun") :].replace("\\\n", " "))
    assert command[:2] == ["exec", "torchrun"]
    module = command.index("-m")
    assert command[module + 1] == "experiments.jobs.train_distributed"
    job_args = [re.sub(r"^\$(\w+)$", r"/example/\1", arg) for arg in command[module + 2 :]]
    args = train_distributed.parse_args(job_args)
    assert (args.treatment, args.control, args.outcomes) == ("arm", "none", "conversion,revenue")
    assert args.batch_size == 1024 and args.seed == 0 and args.device == "auto"
    launcher = " ".join(command[:module])
    assert "--rdzv-backend=c10d" in launcher and "--nproc-per-node=" in launcher


def test_platform_is_not_a_python_package() -> None:
    assert not list(PLATFORM.rglob("__init__.py"))  # it would shadow the stdlib `platform`
