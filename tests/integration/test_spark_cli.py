"""``liftlab strategy run --engine spark`` and ``liftlab strategy load`` arguments, the
spark-submit launch spec, and the install hint when pyspark is missing (none of these start a
JVM)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from experiments.cli import cli
from experiments.jobs import spark_strategy
from experiments.jobs.spark_session import INSTALL_HINT, require_pyspark

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "spark", "--population", "p.parquet"], "--output"),
        (["--engine", "spark", "--output", "out"], "--population, --table"),
        (["--engine", "spark", "--output", "o", "--table", "t", "--population", "p"], "one of"),
        (["--engine", "local"], "--population FILE"),
        (["--engine", "local", "--population", "p.parquet", "--output", "o"], "for spark"),
        (["--engine", "local", "--population", "p.parquet", "--load"], "--load are for spark"),
    ],
)
def test_bad_engine_arguments_are_refused_before_any_work(args, message) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["strategy", "run", "some-strategy", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_load_needs_the_decisions_folder() -> None:
    result = CliRunner().invoke(cli, ["strategy", "load", "some-strategy"])
    assert result.exit_code == 2 and "--decisions" in result.output


def test_missing_population_names_the_option(tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    result = CliRunner().invoke(
        cli,
        [
            "strategy",
            "run",
            "k",
            "--engine",
            "spark",
            "--population",
            str(missing),
            "--output",
            "o",
        ],
    )
    assert result.exit_code == 2
    assert "--population" in result.output and "not found" in result.output


def test_missing_pyspark_says_how_to_install_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now raises ImportError
    with pytest.raises(ImportError) as error:
        require_pyspark()
    assert str(error.value) == INSTALL_HINT and "liftlab[spark]" in INSTALL_HINT


def test_the_submit_script_passes_arguments_the_job_accepts() -> None:
    script = (ROOT / "platform" / "spark" / "submit-strategy.sh").read_text()
    command = shlex.split(script[script.index("exec spark-submit") :].replace("\\\n", " "))
    assert command[:2] == ["exec", "spark-submit"]
    app = next(i for i, arg in enumerate(command) if arg.endswith(".py"))
    assert (ROOT / command[app]).resolve() == Path(spark_strategy.__file__).resolve()
    defaults = dict(re.findall(r'^(\w+)="\$\{\1:-([^}]*)\}"', script, flags=re.M))
    job_args = [
        defaults.get(arg[1:], f"example-{arg[1:]}") if arg.startswith("$") else arg
        for arg in command[app + 1 :]
    ]
    args = spark_strategy.parse_args(job_args)
    assert args.key == "example-STRATEGY" and args.output == "decisions"
    assert args.population == "population.parquet" and args.table is None
    assert args.margin_rate == 0.4 and args.load is False
    assert spark_strategy.parse_args([*job_args, "--load"]).load is True
    launcher = " ".join(command[:app])
    assert "spark.python.worker.reuse=true" in launcher and "--master" in launcher
