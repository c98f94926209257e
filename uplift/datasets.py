"""Locating the shared public data sets (IHDP, Hillstrom, Starbucks, Open Bandit, ...).

The data live outside the repository, in ``../shared/data`` beside the checkout, or wherever
``LIFTLAB_SHARED_DATA`` points. They are never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

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


IHDP_COVARIATES = [f"x{j}" for j in range(1, 26)]


def load_ihdp(replication: int) -> dict[str, dict[str, object]]:
    """IHDP replication ``replication`` (1–50) with the official CFRNet 672/75 split.

    Returns ``{"train": part, "test": part}``, each part a dict of numpy arrays: ``X`` (n, 25),
    ``t`` (0/1), ``y`` (factual outcome), ``mu0``, ``mu1`` (noiseless potential outcomes; the
    true CATE is ``mu1 - mu0``).
    """
    import pandas as pd

    if not 1 <= replication <= 50:
        raise ValueError(f"replication must be in 1..50 (the stored IHDP reps), got {replication}")
    frame = pd.read_parquet(
        shared_data_path("ihdp", "ihdp_npci_1-50_long.parquet"),
        filters=[("rep", "==", replication)],
    ).sort_values("unit")
    parts = {}
    for name in ("train", "test"):
        rows = frame[frame["cfr_split"] == name]
        parts[name] = {
            "X": rows[IHDP_COVARIATES].to_numpy(dtype=float),
            "t": rows["treatment"].to_numpy(dtype=int),
            "y": rows["y_factual"].to_numpy(dtype=float),
            "mu0": rows["mu0"].to_numpy(dtype=float),
            "mu1": rows["mu1"].to_numpy(dtype=float),
        }
    return parts


def load_hillstrom() -> pd.DataFrame:
    """Hillstrom e-mail RCT: DataFrame with features, ``segment`` (treatment), visit/conversion/spend."""
    import pandas as pd

    return pd.read_csv(shared_data_path("hillstrom", "hillstrom.csv.gz"))


HILLSTROM_FEATURES = [
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
]


def load_starbucks(split: str = "training") -> pd.DataFrame:
    """Starbucks promotion RCT (``split`` "training" or "test"): ``Promotion`` Yes/No, ``purchase``."""
    import pandas as pd

    if split not in ("training", "test"):
        raise ValueError(f"split must be 'training' or 'test', got {split!r}")
    return pd.read_csv(shared_data_path("starbucks", f"{split}.csv.gz"))
