"""Peers of the report benchmark (benchmarks/report.py), each run as its own process.

- ``ols``: the average effects the usual notebook way: ``pandas.read_sql_query`` of the exposures
  and of the metric events, per-unit metrics in their windows with numpy, then statsmodels OLS of
  each metric on the arm dummies (HC2 standard errors, which equal Welch's for a saturated dummy
  model), unadjusted and with the centred pre-period metric as a covariate (CUPED as a
  regression; Deng et al. 2013, section 3.3). Timed from the first query to the last fit.
- ``drlearner``: EconML's DRLearner (``uplift.causal.make_peer("dr_learner")``: LightGBM nuisances)
  fitted on exactly the training rows the report's uplift model gets
  (``experiments.reports.heterogeneity.training_split``) and scoring the held-out units; timed
  from fit to effects, the per-unit frame being built (untimed) by the report's own query.

Usage: ``report_peers.py NAME DATABASE_URL KEY POPULATION_PARQUET``; prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.refresh import _naive_utc, _peak_rss_mb  # noqa: E402


def _metrics(url: str, key: str) -> tuple[int, list[Any], list[tuple[int, str]]]:
    from sqlalchemy.orm import Session

    from experiments.db import Metric, make_engine
    from experiments.services.experiments import get_experiment

    engine = make_engine(url)
    with Session(engine) as session:
        experiment = get_experiment(session, key)
        metrics = [session.get(Metric, link.metric_id) for link in experiment.metric_links]
        specs = [(m.key, m.kind, m.event_name, int(m.window_hours)) for m in metrics if m]
        variants = [(v.id, v.key) for v in experiment.variants]  # control first
        experiment_id = experiment.id
    engine.dispose()
    return experiment_id, specs, variants


def ols(url: str, key: str) -> dict[str, Any]:
    import pandas as pd
    import statsmodels.api as sm
    from sqlalchemy import create_engine

    experiment_id, specs, variants = _metrics(url, key)
    names = ", ".join(sorted({f"'{name}'" for _, _, name, _ in specs}))
    started = time.perf_counter()
    engine = create_engine(url)
    with engine.connect() as connection:
        exposures = pd.read_sql_query(
            "SELECT unit_id, variant_id, first_exposure_at FROM assignments "
            f"WHERE experiment_id = {int(experiment_id)}",
            connection,
        )
        events = pd.read_sql_query(
            f"SELECT unit_id, name, value, occurred_at FROM events WHERE name IN ({names})",
            connection,
        )
    engine.dispose()
    loaded = time.perf_counter() - started
    code = pd.Series(np.arange(len(exposures)), index=exposures["unit_id"].to_numpy())
    unit = code.reindex(events["unit_id"].to_numpy()).to_numpy()
    keep = ~np.isnan(unit)
    unit = unit[keep].astype(np.int64)
    first = _naive_utc(exposures["first_exposure_at"])[unit]
    hours = (_naive_utc(events["occurred_at"])[keep] - first) / np.timedelta64(1, "h")
    name = events["name"].to_numpy()[keep]
    value = events["value"].to_numpy(dtype=float)[keep]
    n = len(exposures)
    variant = exposures["variant_id"].to_numpy()
    treated = variants[1:]
    dummies = np.column_stack([np.ones(n)] + [variant == v for v, _ in treated]).astype(float)

    def per_unit(event: str, kind: str, low: float, high: float) -> np.ndarray:
        mask = (name == event) & (hours >= low) & (hours < high)
        weights = np.ones(int(mask.sum())) if kind in ("binary", "count") else value[mask]
        totals = np.bincount(unit[mask], weights=np.nan_to_num(weights), minlength=n)
        return np.minimum(totals, 1.0) if kind == "binary" else totals

    out: dict[str, Any] = {}
    for metric, kind, event, window in specs:
        y = per_unit(event, kind, 0, window)
        pre = per_unit(event, kind, -window, 0)
        plain = sm.OLS(y, dummies).fit(cov_type="HC2")
        cuped = sm.OLS(y, np.column_stack([dummies, pre - pre.mean()])).fit(cov_type="HC2")
        for j, (_, variant_key) in enumerate(treated, start=1):
            out[f"{metric}/{variant_key}"] = {
                "effect": float(plain.params[j]),
                "se": float(plain.bse[j]),
                "cuped_effect": float(cuped.params[j]),
                "cuped_se": float(cuped.bse[j]),
            }
    return {
        "seconds": time.perf_counter() - started,
        "load_seconds": loaded,
        "rows_loaded": int(len(exposures) + len(events)),
        "effects": out,
    }


def drlearner(url: str, key: str, population: str) -> dict[str, Any]:
    import pandas as pd
    from sqlalchemy.orm import Session

    from experiments.db import make_engine
    from experiments.jobs.training_data import training_frame
    from experiments.reports.heterogeneity import feature_columns, training_split
    from uplift.causal import make_peer

    engine = make_engine(url)
    with Session(engine) as session:
        frame = training_frame(session, key, pd.read_parquet(population))
    engine.dispose()
    frame = frame.sort_values("unit_id", kind="mergesort").reset_index(drop=True)
    features, _ = feature_columns(frame)
    rows, is_test = training_split(len(frame), seed=0)  # the report's default seed
    train, test = frame.iloc[rows], frame[is_test]
    started = time.perf_counter()
    peer = make_peer("dr_learner", random_state=0).fit(
        train[features],
        train["arm"].to_numpy(),
        train["conversion"].to_numpy(float),
        control="none",
    )
    fitted = time.perf_counter()
    effects = peer.effect(test[features])
    return {
        "seconds": time.perf_counter() - started,
        "fit_seconds": fitted - started,
        "n_train": int(len(rows)),
        "n_scored": int(len(test)),
        "average_effects": {
            str(arm): float(effects[:, k].mean()) for k, arm in enumerate(peer.incentives_)
        },
    }


def main() -> None:
    name, url, key, population = sys.argv[1:5]
    result = ols(url, key) if name == "ols" else drlearner(url, key, population)
    result["peak_mb"] = _peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
