"""Executor side of the Spark strategy job: score with the broadcast model, price, bucket, hull.

Layer: ``experiments.jobs``. Every function here runs inside Spark's Python workers on pandas
frames and calls the single-process code (``experiments.jobs.strategy_run``,
``experiments.strategy``) on them, so that each user gets bit for bit the numbers the
single-process run gives it:

- the model is shipped once as the bytes of its saved folder (a Spark broadcast, fetched once
  per executor) and loaded once per Python worker (``_MODELS``, keyed by the bytes' digest);
- scoring runs on the same chunks of ``uplift.trainer.EVAL_CHUNK`` consecutive users as the
  single process (a matrix product's rounding can depend on how many rows it multiplies);
- per user: calibrated outcomes, value and cost, holdout/explore bucket, and the upper hull of
  (cost, value) — at most one segment per arm — kept as columns for the distributed solver.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.jobs.spark_session import ROW
from experiments.jobs.strategy_run import (
    StrategyInputs,
    calibrate,
    calibration_shifts,
    population_economics,
    raw_outcomes,
)
from experiments.strategy import buckets as bk
from experiments.strategy.exact import exact_sum
from experiments.strategy.knapsack import build_hull, columns
from experiments.strategy.validation import resolve_eligible

if TYPE_CHECKING:
    import pandas as pd

_MODELS: dict[str, Any] = {}  # per Python worker: digest -> loaded UpliftModel
BATCH = "batch"


def model_payload(artifact_path: str) -> dict[str, Any]:
    """The saved model folder as bytes (for a broadcast) and their digest."""
    folder = Path(artifact_path)
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    digest = hashlib.sha256(b"".join(name.encode() + data for name, data in files.items()))
    return {"digest": digest.hexdigest(), "files": files}


def cached_model(payload: dict[str, Any]) -> Any:
    """The model of ``payload``, loaded at most once in this Python worker."""
    digest = payload["digest"]
    if digest not in _MODELS:
        from uplift import UpliftModel

        with tempfile.TemporaryDirectory(prefix="liftlab-model-") as folder:
            for name, data in payload["files"].items():
                (Path(folder) / name).write_bytes(data)
            _MODELS[digest] = UpliftModel.load(folder)
    return _MODELS[digest]


def outcome_columns(k: int) -> tuple[list[str], list[str]]:
    """Names of the conversion and revenue columns for [none, *arms]."""
    return [f"p{j}" for j in range(k + 1)], [f"r{j}" for j in range(k + 1)]


def scored_schema(k: int) -> str:
    p_cols, r_cols = outcome_columns(k)
    return ", ".join([f"{ROW} long", "unit_id string", *(f"{c} double" for c in p_cols + r_cols)])


def score_chunk(pdf: pd.DataFrame, inputs: StrategyInputs, payload: Any) -> pd.DataFrame:
    """One scoring chunk (``applyInPandas`` by batch): uncalibrated outcomes per user."""
    import pandas as pd

    pdf = pdf.sort_values(ROW, kind="stable").reset_index(drop=True)
    model = cached_model(payload.value if hasattr(payload, "value") else payload)
    p, revenue = raw_outcomes(model, pdf[inputs.features], inputs.arms)
    p_cols, r_cols = outcome_columns(len(inputs.arms))
    out = {ROW: pdf[ROW].to_numpy(np.int64), "unit_id": pdf["unit_id"].astype(str).to_numpy()}
    out.update({c: p[:, j] for j, c in enumerate(p_cols)})
    out.update({c: revenue[:, j] for j, c in enumerate(r_cols)})
    return pd.DataFrame(out)


def effect_units(pdf: pd.DataFrame, k: int) -> dict[str, Any]:
    """Exact sums of each arm's conversion effect ``p_j - p_0`` (for the calibration means)."""
    p = pdf[outcome_columns(k)[0]].to_numpy(np.float64)
    return {"n": int(len(p)), "units": [exact_sum(p[:, j] - p[:, 0]) for j in range(1, k + 1)]}


def cost_units(pdf: pd.DataFrame, k: int) -> dict[str, Any]:
    """Exact sums of each arm's expected spend over a priced frame (for the serving state's
    mean costs, ``strategy_run.mean_costs``)."""
    cost = pdf[[f"c{j}" for j in range(k)]].to_numpy(np.float64)
    return {"n": int(len(cost)), "units": [exact_sum(cost[:, j]) for j in range(k)]}


def hull_columns(k: int) -> tuple[list[str], list[str], list[str]]:
    """Per hull step t: the segment's slope, cost increment and arm."""
    return [f"s{t}" for t in range(k)], [f"d{t}" for t in range(k)], [f"a{t}" for t in range(k)]


def priced_schema(k: int) -> str:
    s_cols, d_cols, a_cols = hull_columns(k)
    doubles = [f"v{j}" for j in range(k)] + [f"c{j}" for j in range(k)] + s_cols + d_cols
    return ", ".join(
        [
            f"{ROW} long",
            "unit_id string",
            "code int",
            "explore_arm int",
            "start_arm int",
            *(f"{c} double" for c in doubles),
            *(f"{c} int" for c in a_cols),
        ]
    )


def value_cost(pdf: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The (n, k) value and cost matrices of a priced frame."""
    value = pdf[[f"v{j}" for j in range(k)]].to_numpy(np.float64)
    cost = pdf[[f"c{j}" for j in range(k)]].to_numpy(np.float64)
    return value, cost


def value_cost_rows(pdf: pd.DataFrame, k: int) -> dict[str, Any]:
    """A priced frame's row numbers with its value and cost matrices, as JSON-able lists."""
    value, cost = value_cost(pdf, k)
    return {"row": pdf[ROW].tolist(), "value": value.tolist(), "cost": cost.tolist()}


def price_partition(pdf: pd.DataFrame, inputs: StrategyInputs, means: list[float]) -> pd.DataFrame:
    """Calibrated economics, bucket, explore draw and hull segments of every user."""
    k = len(inputs.arms)
    p_cols, r_cols = outcome_columns(k)
    p, order_value = calibrate(
        pdf[p_cols].to_numpy(np.float64),
        pdf[r_cols].to_numpy(np.float64),
        calibration_shifts(inputs.calibration_ates, means),
    )
    economics = population_economics(inputs, p, order_value)
    return priced_frame(
        pdf[ROW].to_numpy(np.int64),
        pdf["unit_id"].astype(str).to_numpy(),
        economics.value,
        economics.cost,
        inputs.arms,
        inputs.holdout,
        inputs.explore,
        inputs.salt,
        inputs.hash_version,
    )


def priced_frame(
    rows: np.ndarray,
    ids: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    arms: list[str],
    holdout: float,
    explore: float,
    salt: str,
    hash_version: int,
) -> pd.DataFrame:
    """Bucket, explore draw and hull segments of users with these value and cost rows."""
    import pandas as pd

    n, k = value.shape
    mask = resolve_eligible(None, value, cost, arms)  # the single run's checks
    code, explore_arm = bk.assign(ids, n, mask, holdout, explore, salt, hash_version)
    exploit = np.flatnonzero(code == bk.EXPLOIT)
    start = np.full(n, -1, dtype=np.int32)
    slope = np.full((n, k), np.nan)
    dc = np.full((n, k), np.nan)
    arm = np.full((n, k), -1, dtype=np.int32)
    if exploit.size:
        hull = build_hull(columns(value[exploit]), columns(cost[exploit]), None)
        start[exploit] = hull.start_arm
        for t, (users, a, d, s) in enumerate(
            zip(hull.idx, hull.arm, hull.dc, hull.slope, strict=True)
        ):
            at = exploit[users]
            slope[at, t], dc[at, t], arm[at, t] = s, d, a
    out: dict[str, Any] = {
        ROW: rows,
        "unit_id": ids,
        "code": code.astype(np.int32),
        "explore_arm": explore_arm.astype(np.int32),
        "start_arm": start,
    }
    s_cols, d_cols, a_cols = hull_columns(k)
    for j in range(k):
        out[f"v{j}"], out[f"c{j}"] = value[:, j], cost[:, j]
    for t in range(k):
        out[s_cols[t]], out[d_cols[t]], out[a_cols[t]] = slope[:, t], dc[:, t], arm[:, t]
    return pd.DataFrame(out)
