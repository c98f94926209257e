"""Fixtures of the integration tests that drive the `liftlab` CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from experiments.cli import cli


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """``run("users", "list")`` → click Result, against this test's private database."""
    monkeypatch.setenv("LIFTLAB_DATABASE_URL", db_url)
    monkeypatch.setenv("LIFTLAB_INSTANCE_DIR", str(tmp_path / "instance"))

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke
