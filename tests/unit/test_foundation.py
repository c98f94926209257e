"""Packaging and layering: the CLI starts light, `platform` stays stdlib, import-linter contracts hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_cli_help_imports_no_heavy_library() -> None:
    out = _run(
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from experiments.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ['torch', 'flask', 'econml', 'dowhy', 'lightgbm', 'pyspark', 'pandas']\n"
        "print(json.dumps({'loaded': [m for m in heavy if m in sys.modules], 'help': result.output}))"
    )
    data = json.loads(out)
    assert data["loaded"] == []
    for command in ("db", "users", "simulate", "demo", "serve"):
        assert f"  {command}" in data["help"]


def test_console_script_help() -> None:
    script = Path(sys.executable).with_name("liftlab")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "Usage: liftlab" in result.stdout


def test_platform_is_the_standard_library() -> None:
    out = _run(
        "import platform, json; print(json.dumps([platform.__file__, platform.python_version()]))"
    )
    path, version = json.loads(out)
    assert "site-packages" not in path and not path.startswith(str(ROOT))
    assert version.startswith("3.")
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert not (ROOT / "alembic" / "__init__.py").exists()


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


def test_distribution_lists_exactly_the_three_packages() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == [
        "experiments*",
        "uplift*",
        "web*",
    ]
    assert "torch==2.13.0" in config["project"]["dependencies"]
