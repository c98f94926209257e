"""Heterogeneity of the effect, from the uplift model trained on the experiment (reports layer).

The model is the latest succeeded ``ModelRun`` of the experiment when its artifact is on disk
(evaluated on every exposed unit, since that run's held-out split is not recorded; its own
held-out Qini is quoted from the run), else a small model trained here on 70 % of the units and
evaluated on the other 30 % (held-out randomized users); above ``MAX_TRAIN_ROWS`` training units
it trains on a random sample of that many of the 70 % (said in the report), which keeps a
1,000,000-user report within minutes on a CPU. Sections: the distribution of per-user
predicted effects per arm (quantiles), effects by segment (each level of each categorical feature:
the observed difference in conversion with a Welch interval next to the model's mean predicted
effect), Qini and uplift curves (``uplift.metrics``), and calibration of predicted versus
observed uplift by decile of predicted effect. Segment and decile rows obey the privacy rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from experiments.db import ModelRun
from experiments.reports.privacy import Privacy, noisy_count, noisy_sum, suppress
from experiments.stats import ProportionStatistic, welch_test

if TYPE_CHECKING:
    import pandas as pd

NOT_FEATURES = {"unit_id", "variant", "arm", "orders", "conversion", "revenue"}
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
CURVE_POINTS = 50
TEST_SHARE = 0.3
MAX_TRAIN_ROWS = 100_000
DEFAULT_PARAMS: dict[str, Any] = {
    "architecture": "tarnet",
    "representation": (64, 64),
    "head": (32,),
    "criterion": "factual",
    "max_epochs": 40,
    "n_estimators": 1,  # one network: the 1M-user report stays under 5 minutes (5 would not)
    "device": "cpu",
    "verbose": False,
}


def latest_model_run(session: Session, experiment_id: int) -> ModelRun | None:
    return session.scalar(
        select(ModelRun)
        .where(ModelRun.experiment_id == experiment_id, ModelRun.status == "succeeded")
        .order_by(ModelRun.finished_at.desc(), ModelRun.id.desc())
        .limit(1)
    )


def feature_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(features, categorical features) of a training frame."""
    import pandas as pd

    features = [c for c in frame.columns if c not in NOT_FEATURES]
    categorical = [
        c
        for c in features
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    return features, categorical


def training_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out mask): ``TEST_SHARE`` of the rows held out at random, then at
    most ``MAX_TRAIN_ROWS`` of the others drawn at random without replacement."""
    rng = np.random.default_rng(seed)
    is_test = rng.random(n) < TEST_SHARE
    rows = np.flatnonzero(~is_test)
    if len(rows) > MAX_TRAIN_ROWS:
        rows = np.sort(rng.choice(rows, MAX_TRAIN_ROWS, replace=False))
    return rows, is_test


def fit_or_load(
    session: Session,
    experiment_id: int,
    frame: pd.DataFrame,
    features: list[str],
    params: dict[str, Any] | None,
    seed: int,
) -> tuple[Any, dict[str, Any], np.ndarray]:
    """(model, description, evaluation mask over ``frame`` rows)."""
    from uplift import UpliftModel

    run = latest_model_run(session, experiment_id)
    if run is not None and run.artifact_path and Path(run.artifact_path).exists():
        model = UpliftModel.load(run.artifact_path)
        stored = run.metrics or {}
        info = {
            "source": "model_run",
            "model_run_id": run.id,
            "architecture": run.architecture,
            "params": run.params,
            "evaluated_on": "all exposed units (the run's held-out split is not recorded; "
            "these curves are in-sample for part of the units)",
            "run_held_out_qini": stored.get("qini"),
            "run_n_test": stored.get("n_test"),
        }
        return model, info, np.ones(len(frame), dtype=bool)
    chosen = {**DEFAULT_PARAMS, "random_state": seed, **(params or {})}
    rows, is_test = training_split(len(frame), seed)
    candidates = np.flatnonzero(~is_test)
    train = frame.iloc[rows]
    model = UpliftModel(**chosen).fit(
        train[features], train["arm"].to_numpy(), train[["conversion", "revenue"]], control="none"
    )
    sampled = len(rows) < len(candidates)
    info = {
        "source": "trained_for_report",
        "model_run_id": None,
        "architecture": chosen["architecture"],
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in chosen.items()},
        "evaluated_on": f"held-out randomized units ({TEST_SHARE:.0%}, not used in training)",
        "n_train": int(len(rows)),
        "n_train_available": int(len(candidates)),
        "training_sample": (
            f"a random sample of {len(rows):,} of the {len(candidates):,} non-held-out units "
            f"(at most {MAX_TRAIN_ROWS:,}); the per-user predictions come from that model"
            if sampled
            else f"all {len(candidates):,} non-held-out units"
        ),
        "n_evaluated": int(is_test.sum()),
    }
    return model, info, is_test


def predicted_effects(model: Any, X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-user predicted effects, outcome → (n_users, n_incentives), each scored once."""
    mu = model.outcomes_by_target(X)  # one forward pass for every target
    if "conversion" not in mu:
        raise ValueError(f"outcome='conversion' is unknown; this model predicts {list(mu)}")
    return {t: mu[t][:, 1:] - mu[t][:, :1] for t in ("conversion", "revenue") if t in mu}


def comparison(
    n_c: float,
    s_c: float,
    n_t: float,
    s_t: float,
    privacy: Privacy,
    rng: np.random.Generator,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Observed difference in a 0/1 outcome (treated − control) with a Welch interval."""
    if privacy.dp:
        n_c, n_t = noisy_count(n_c, privacy, rng), noisy_count(n_t, privacy, rng)
        s_c, s_t = noisy_sum(s_c, n_c, privacy, rng), noisy_sum(s_t, n_t, privacy, rng)
    result = welch_test(
        ProportionStatistic(n=int(n_c), sum=float(s_c)),
        ProportionStatistic(n=int(n_t), sum=float(s_t)),
        alpha=alpha,
        relative=False,
    )
    ok = result.error is None
    return {
        "n_control": int(n_c),
        "n_arm": int(n_t),
        "conversions_control": float(s_c),
        "conversions_arm": float(s_t),
        "observed_effect": float(result.effect) if ok else None,
        "observed_ci": [float(result.ci_low), float(result.ci_high)] if ok else None,
        "observed_p_value": float(result.p_value) if ok else None,
    }


def _thin(x: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    step = max(1, len(x) // CURVE_POINTS)
    index = np.r_[np.arange(0, len(x), step), len(x) - 1] if len(x) else np.array([], int)
    index = np.unique(index)
    return {"index": [int(i) for i in index], "x": x[index].tolist(), "y": y[index].tolist()}


def heterogeneity_section(
    frame: pd.DataFrame,
    model: Any,
    info: dict[str, Any],
    evaluate: np.ndarray,
    arms: list[str],
    categorical: list[str],
    privacy: Privacy,
    rng: np.random.Generator,
    scores: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Distribution, segments, Qini/uplift curves and calibration for each treatment arm;
    ``scores`` are ``predicted_effects(model, features)`` when the caller has them already."""
    from uplift import metrics

    if scores is None:
        features = [c for c in frame.columns if c not in NOT_FEATURES]
        scores = predicted_effects(model, frame[features])
    effects = scores["conversion"]
    revenue = scores.get("revenue")
    levels = {feature: frame[feature].astype(str).to_numpy() for feature in categorical}
    labels = frame["arm"].to_numpy()
    y = frame["conversion"].to_numpy(dtype=float)
    columns = {arm: model.arm_index(arm) for arm in arms}
    distribution, segments, curves, calibration = [], [], [], []
    for arm, j in columns.items():
        for outcome, tau in (("conversion", effects), ("revenue", revenue)):
            if tau is None:
                continue
            values = tau[:, j]
            distribution.append(
                {
                    "arm": arm,
                    "outcome": outcome,
                    "n_users": int(len(values)),
                    "mean": float(values.mean()),
                    "share_negative": float((values < 0).mean()),
                    "quantiles": {
                        f"q{int(q * 100):02d}": float(np.quantile(values, q)) for q in QUANTILES
                    },
                }
            )
        for feature in categorical:
            level_values = levels[feature]
            for level in sorted(set(level_values.tolist())):
                in_level = level_values == level
                c, t = in_level & (labels == "none"), in_level & (labels == arm)
                row = {
                    "feature": feature,
                    "level": level,
                    "arm": arm,
                    **comparison(c.sum(), y[c].sum(), t.sum(), y[t].sum(), privacy, rng),
                    "model_effect": float(effects[in_level & (c | t), j].mean()),
                }
                suppress(
                    row,
                    [c.sum(), t.sum(), row["n_control"], row["n_arm"]],
                    privacy.k_min,
                    keep=("feature", "level", "arm"),
                )
                segments.append(row)
        rows = evaluate & ((labels == "none") | (labels == arm))
        treated = (labels[rows] == arm).astype(int)
        score, outcome_y = effects[rows, j], y[rows]
        entry: dict[str, Any] = {"arm": arm, "n_users": int(rows.sum())}
        if treated.min(initial=1) == 0 and treated.max(initial=0) == 1:
            entry.update(
                qini_auc=float(metrics.qini_auc_score(outcome_y, score, treated)),
                uplift_auc=float(metrics.uplift_auc_score(outcome_y, score, treated)),
                uplift_at_30=float(metrics.uplift_at_k(outcome_y, score, treated, k=0.3)),
                qini_curve=_thin(*metrics.qini_curve(outcome_y, score, treated)),
                uplift_curve=_thin(*metrics.uplift_curve(outcome_y, score, treated)),
            )
        curves.append(entry)
        calibration += _calibration(arm, score, outcome_y, treated, privacy, rng)
    return {
        "model": info,
        "outcome": "conversion",
        "effect_distribution": distribution,
        "segments": segments,
        "curves": curves,
        "calibration": calibration,
    }


def _calibration(
    arm: str,
    score: np.ndarray,
    y: np.ndarray,
    treated: np.ndarray,
    privacy: Privacy,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Deciles of predicted effect (1 = highest): predicted mean next to the observed uplift."""
    order = np.argsort(-score, kind="mergesort")
    rows = []
    for decile, chunk in enumerate(np.array_split(order, 10), start=1):
        if len(chunk) == 0:
            continue
        t = treated[chunk] == 1
        c = ~t
        row = {
            "arm": arm,
            "decile": decile,
            "predicted_effect": float(score[chunk].mean()),
            **comparison(c.sum(), y[chunk][c].sum(), t.sum(), y[chunk][t].sum(), privacy, rng),
        }
        suppress(
            row,
            [c.sum(), t.sum(), row["n_control"], row["n_arm"]],
            privacy.k_min,
            keep=("arm", "decile"),
        )
        rows.append(row)
    return rows
