"""Train the uplift model on an experiment's randomized data and record the run.

The model learns conversion and revenue jointly; it is evaluated on a held-out share of the
randomized units (Qini per arm, and the IPW value of sending each user their best arm), saved
under the artifact folder, and a ``ModelRun`` row keeps its parameters and metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from experiments.db import ModelRun, utcnow
from experiments.jobs.training_data import training_frame
from experiments.services.experiments import get_experiment

OUTCOMES = ["conversion", "revenue"]
NOT_FEATURES = {"unit_id", "variant", "arm", "orders", "conversion", "revenue"}


def evaluate(model: Any, test: Any, features: list[str]) -> dict[str, Any]:
    from uplift import metrics

    arms = list(model.incentives_)
    effects = model.effect(test[features], outcome="conversion")
    treatment = test["arm"].to_numpy()
    y = test["conversion"].to_numpy()
    out: dict[str, Any] = {"n_test": int(len(test)), "arms": arms, "qini": {}, "auuc": {}}
    for j, arm in enumerate(arms):
        rows = np.isin(treatment, ["none", arm])
        if rows.sum() < 20:
            continue
        t = (treatment[rows] == arm).astype(int)
        out["qini"][arm] = float(metrics.qini_auc_score(y[rows], effects[rows, j], t))
        out["auuc"][arm] = float(metrics.uplift_auc_score(y[rows], effects[rows, j], t))
        x, curve = metrics.qini_curve(y[rows], effects[rows, j], t)
        step = max(1, len(x) // 50)
        out.setdefault("qini_curves", {})[arm] = {
            "x": [float(v) for v in x[::step]],
            "y": [float(v) for v in curve[::step]],
        }
    value = metrics.policy_value_ipw(y, treatment, effects, arms, "none")
    out["policy_value_ipw"] = value.value
    out["policy_value_se"] = value.standard_error
    out["policy_share"] = {str(k): v for k, v in value.share_treated.items()}
    out["control_value"] = float(y[treatment == "none"].mean())
    return out


def train_on_experiment(
    session: Session,
    key: str,
    population: Any,
    artifact_dir: Path,
    *,
    params: dict[str, Any] | None = None,
    test_share: float = 0.3,
    seed: int = 0,
) -> ModelRun:
    """Fit, evaluate and save; the ModelRun row is flushed (the caller commits)."""
    from uplift import UpliftModel

    experiment = get_experiment(session, key)
    params = {
        "architecture": "auto",  # the model's size- and randomization-based choice
        "max_epochs": 60,
        "random_state": seed,
        "verbose": False,
        **(params or {}),
    }
    run = ModelRun(
        experiment_id=experiment.id,
        architecture=params["architecture"],
        status="running",
        params=params,
    )
    session.add(run)
    session.flush()
    try:
        frame = training_frame(session, key, population)
        features = [c for c in frame.columns if c not in NOT_FEATURES]
        rng = np.random.default_rng(seed)
        is_test = rng.random(len(frame)) < test_share
        train, test = frame[~is_test], frame[is_test]
        model = UpliftModel(**params).fit(
            train[features], train["arm"].to_numpy(), train[OUTCOMES], control="none"
        )
        run.architecture = model.architecture_  # what "auto" resolved to
        run.metrics = {
            "n_train": int(len(train)),
            "features": features,
            **evaluate(model, test, features),
        }
        path = artifact_dir / "models" / f"run-{run.id}"
        model.save(path)
        run.artifact_path = str(path)
        run.status = "succeeded"
    except Exception as exc:
        run.status = "failed"
        run.error = f"{exc.__class__.__name__}: {exc}"
        raise
    finally:
        run.finished_at = utcnow()
        session.flush()
    return run
