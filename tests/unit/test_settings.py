"""Settings: defaults for the embedded mode, generated secrets kept 0600, one clear error when bad."""

from __future__ import annotations

import dataclasses
import stat

import pytest

from experiments.errors import ConfigurationError
from experiments.settings import load_settings


def test_embedded_defaults_and_generated_secrets(tmp_path) -> None:
    env = {"LIFTLAB_INSTANCE_DIR": str(tmp_path / "inst")}
    first = load_settings(env)
    assert first.database_url == f"sqlite:///{tmp_path / 'inst' / 'liftlab.db'}"
    assert first.warehouse_url == first.database_url
    assert first.artifact_dir == tmp_path / "inst" / "artifacts"
    key_file = tmp_path / "inst" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32
    second = load_settings(env)
    assert second.secret_key == first.secret_key  # kept, not regenerated
    assert second.pseudonymization_key == first.pseudonymization_key != first.secret_key


def test_settings_are_frozen(tmp_path) -> None:
    settings = load_settings({"LIFTLAB_INSTANCE_DIR": str(tmp_path)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.database_url = "sqlite://"  # type: ignore[misc]


def test_explicit_values(tmp_path) -> None:
    settings = load_settings(
        {
            "LIFTLAB_INSTANCE_DIR": str(tmp_path),
            "LIFTLAB_DATABASE_URL": "postgresql+psycopg://u@db:5432/liftlab",
            "LIFTLAB_WAREHOUSE_URL": "duckdb:///w.duckdb",
            "LIFTLAB_SECRET_KEY": "s" * 40,
            "LIFTLAB_PSEUDONYMIZATION_KEY": "p" * 40,
            "LIFTLAB_ARTIFACT_DIR": str(tmp_path / "art"),
        }
    )
    assert settings.database_url.startswith("postgresql")
    assert settings.warehouse_url == "duckdb:///w.duckdb"
    assert settings.secret_key == "s" * 40
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LIFTLAB_DATABASE_URL", "not a url", "LIFTLAB_DATABASE_URL"),
        ("LIFTLAB_WAREHOUSE_URL", "ftp://x", "LIFTLAB_WAREHOUSE_URL"),
        ("LIFTLAB_SECRET_KEY", "short", "at least 16"),
        ("LIFTLAB_DATABASE_URL", "", "empty"),
        ("LIFTLAB_DATABSE_URL", "sqlite://", "unknown setting LIFTLAB_DATABSE_URL"),
    ],
)
def test_bad_values_give_one_clear_error(tmp_path, name, value, expected) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        load_settings({"LIFTLAB_INSTANCE_DIR": str(tmp_path), name: value})
