"""Fixtures shared by every test: shared data, database URLs (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from uplift.datasets import SharedDataMissing, shared_data_path

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Callable[..., Path]:
    """``shared_data("gbstats", "x.json")`` → path; skips (fails in CI) when the file is absent."""

    def get(*parts: str) -> Path:
        try:
            return shared_data_path(*parts)
        except SharedDataMissing as exc:
            _missing(str(exc))
            raise  # unreachable: skip/fail raise

    return get
