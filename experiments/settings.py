"""Settings: read once from ``LIFTLAB_*`` environment variables into a frozen object.

Layer: configuration (no Flask, no database). Every other layer receives a ``Settings``; nothing else
reads the environment.

Variables (all optional for the embedded default):

- ``LIFTLAB_INSTANCE_DIR``: folder for the embedded database and generated secrets (``./instance``).
- ``LIFTLAB_DATABASE_URL``: SQLAlchemy URL (default ``sqlite:///<instance>/liftlab.db``).
- ``LIFTLAB_WAREHOUSE_URL``: where analysis SQL runs (default: the database URL).
- ``LIFTLAB_SECRET_KEY``: Flask session key; generated on first run and kept in
  ``<instance>/secret_key`` (mode 0600) when unset.
- ``LIFTLAB_ARTIFACT_DIR``: model and report files (default ``<instance>/artifacts``).
- ``LIFTLAB_PSEUDONYMIZATION_KEY``: HMAC key for unit ids in exports; generated like the secret key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from experiments.errors import ConfigurationError

PREFIX = "LIFTLAB_"
_KNOWN = {
    "INSTANCE_DIR",
    "DATABASE_URL",
    "WAREHOUSE_URL",
    "SECRET_KEY",
    "ARTIFACT_DIR",
    "PSEUDONYMIZATION_KEY",
    # read elsewhere on purpose (tests, data): accepted, not stored here
    "TEST_POSTGRES_URL",
    "SHARED_DATA",
}
_MIN_KEY_LENGTH = 16
_URL_SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb", "duckdb", "hive", "databricks", "trino")


@dataclass(frozen=True)
class Settings:
    instance_dir: Path
    database_url: str
    warehouse_url: str
    secret_key: str
    artifact_dir: Path
    pseudonymization_key: str

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite")


def _check_url(name: str, value: str) -> str:
    scheme = value.split(":", 1)[0].split("+", 1)[0]
    if "://" not in value or scheme not in _URL_SCHEMES:
        raise ConfigurationError(
            f"{PREFIX}{name}={value!r} is not a database URL; use e.g. "
            "'postgresql+psycopg://user@127.0.0.1:5432/db' or 'sqlite:////path/liftlab.db'"
        )
    return value


def _persistent_secret(instance_dir: Path, filename: str) -> str:
    """Return the secret kept in ``instance_dir/filename``, creating it (mode 0600) if absent."""
    path = instance_dir / filename
    if path.exists():
        value = path.read_text().strip()
        if len(value) < _MIN_KEY_LENGTH:
            raise ConfigurationError(
                f"{path} holds a key shorter than {_MIN_KEY_LENGTH} characters; delete the file "
                "to have a new one generated"
            )
        return value
    instance_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once never overwrite each other's key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _key(env: Mapping[str, str], name: str, instance_dir: Path, filename: str) -> str:
    value = env.get(PREFIX + name)
    if value is None:
        return _persistent_secret(instance_dir, filename)
    if len(value) < _MIN_KEY_LENGTH:
        raise ConfigurationError(
            f"{PREFIX}{name} must be at least {_MIN_KEY_LENGTH} characters; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default ``os.environ``). Raises ``ConfigurationError``."""
    env = os.environ if env is None else env
    unknown = sorted(k for k in env if k.startswith(PREFIX) and k[len(PREFIX) :] not in _KNOWN)
    if unknown:
        raise ConfigurationError(
            f"unknown setting {unknown[0]}; known ones are "
            + ", ".join(PREFIX + k for k in sorted(_KNOWN))
        )
    for name in _KNOWN:
        if env.get(PREFIX + name, None) == "":
            raise ConfigurationError(f"{PREFIX}{name} is set but empty; unset it or give a value")
    instance_dir = Path(env.get(PREFIX + "INSTANCE_DIR", "instance")).resolve()
    database_url = _check_url(
        "DATABASE_URL", env.get(PREFIX + "DATABASE_URL", f"sqlite:///{instance_dir / 'liftlab.db'}")
    )
    warehouse_url = _check_url("WAREHOUSE_URL", env.get(PREFIX + "WAREHOUSE_URL", database_url))
    artifact_dir = Path(env.get(PREFIX + "ARTIFACT_DIR", str(instance_dir / "artifacts"))).resolve()
    return Settings(
        instance_dir=instance_dir,
        database_url=database_url,
        warehouse_url=warehouse_url,
        secret_key=_key(env, "SECRET_KEY", instance_dir, "secret_key"),
        artifact_dir=artifact_dir,
        pseudonymization_key=_key(
            env, "PSEUDONYMIZATION_KEY", instance_dir, "pseudonymization_key"
        ),
    )
