"""Locating the shared public data sets (IHDP, Hillstrom, Starbucks, Open Bandit, ...).

The data live outside the repository, in ``../shared/data`` beside the checkout, or wherever
``LIFTLAB_SHARED_DATA`` points. They are never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]


class SharedDataMissingError(FileNotFoundError):
    """A shared data file is absent; the message says where it was looked for."""


def shared_data_dir() -> Path:
    env = os.environ.get("LIFTLAB_SHARED_DATA")
    return Path(env) if env else _REPO_ROOT.parent / "shared" / "data"


def shared_data_path(*parts: str) -> Path:
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        raise SharedDataMissingError(
            f"{path} not found; put the shared data beside the checkout (../shared/data) "
            "or set LIFTLAB_SHARED_DATA to its folder"
        )
    return path
