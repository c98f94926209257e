"""Train the uplift model on an experiment's randomized data and record the run.

The model learns conversion and revenue jointly; it is evaluated on a held-out share of the
randomized units (Qini per arm, and the IPW value of sending each user their best arm), saved
under the artifact folder, and a ``ModelRun`` row keeps its parameters, a fingerprint of the
training data (``experiments.jobs.fingerprint``), its metrics, the artifact path and who ran it.

Bad input (experiment, parameters, population) is refused before anything is written. A run that
fails once its inputs are accepted (fitting, evaluating or saving raises) is a "failed" row with
its error, handed to the caller's ``record_failure`` to commit in a transaction of its own, since
the caller's rolls back; its model folder is removed, so no artifact is half-written.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from experiments.db import ModelRun, utcnow
from experiments.errors import TrainingFailedError, ValidationError
from experiments.jobs.fingerprint import frame_fingerprint
from experiments.jobs.training_data import training_frame
from experiments.services.experiments import get_experiment

OUTCOMES = ["conversion", "revenue"]
NOT_FEATURES = {"unit_id", "variant", "arm", "orders", "conversion", "revenue"}


def model_parameter_names() -> list[str]:
    from uplift import UpliftModel

    return sorted(UpliftModel().get_params())


def check_model_params(params: dict[str, Any], field: str = "params") -> None:
    """Every key must be an ``UpliftModel`` constructor parameter (ValidationError naming it)."""
    known = set(model_parameter_names())
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        raise ValidationError(
            field,
            f"unknown UpliftModel parameter(s) {', '.join(map(repr, unknown))}; "
            f"use any of: {', '.join(sorted(known))}",
        )


def model_params(params: dict[str, Any] | None, seed: int) -> dict[str, Any]:
    """The job's defaults under the caller's ``params``, checked as far as no data is needed:
    UpliftModel parameter names, then the values ``fit`` would refuse first."""
    from uplift import UpliftModel
    from uplift.fitting import check_params

    merged = {
        "architecture": "auto",  # the model's size- and randomization-based choice
        "max_epochs": 60,
        "random_state": seed,
        "verbose": False,
        **(params or {}),
    }
    check_model_params(merged)
    try:
        check_params(UpliftModel(**merged))
    except (TypeError, ValueError, KeyError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ValidationError("params", f"the uplift model rejected its input: {reason}") from exc
    return merged


def features_of(frame: Any) -> list[str]:
    return [c for c in frame.columns if c not in NOT_FEATURES]


def held_out(n: int, test_share: float, seed: int) -> np.ndarray:
    """The held-out (test) mask of the job: seeded, the same for ``train`` and ``tune``."""
    return np.random.default_rng(seed).random(n) < test_share


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


def fit_and_evaluate(
    frame: Any, features: list[str], params: dict[str, Any], test_share: float, seed: int
) -> tuple[Any, dict[str, Any]]:
    """The fitted model and its metrics on the held-out share of ``frame``."""
    from uplift import UpliftModel

    is_test = held_out(len(frame), test_share, seed)
    train, test = frame[~is_test], frame[is_test]
    model = UpliftModel(**params).fit(
        train[features], train["arm"].to_numpy(), train[OUTCOMES], control="none"
    )
    metrics = {"n_train": int(len(train)), "features": features, **evaluate(model, test, features)}
    return model, metrics


def train_on_experiment(
    session: Session,
    key: str,
    population: Any,
    artifact_dir: Path,
    *,
    params: dict[str, Any] | None = None,
    test_share: float = 0.3,
    seed: int = 0,
    created_by: str | None = None,
    tuning: dict[str, Any] | None = None,
    frame: Any = None,
    record_failure: Callable[[ModelRun], None] | None = None,
) -> ModelRun:
    """Fit, evaluate and save; the succeeded ModelRun row is flushed (the caller commits).

    ``params`` are ``UpliftModel`` parameters; ``tuning`` (a search's summary) is recorded in the
    run's params under ``"tuning"``; ``frame`` is the training frame when the caller built it
    already (``tune``), else it is built from the experiment and ``population``.

    When training fails, nothing is added to ``session``: the failed run (status "failed", its
    error, params, data fingerprint, created_by) goes to ``record_failure``, which commits it in
    its own transaction, and ``TrainingFailedError`` names that run and the error.
    """
    experiment = get_experiment(session, key)
    params = model_params(params, seed)
    if frame is None:
        frame = training_frame(session, key, population)
    features = features_of(frame)
    run = new_run(experiment.id, params, frame, created_by, tuning)
    folder = artifact_dir / "models"
    # saved under a temporary name: the run's id, which names the folder, is known at its flush
    partial = folder / f".partial-{uuid.uuid4().hex}"
    try:
        try:
            model, run.metrics = fit_and_evaluate(frame, features, params, test_share, seed)
            model.save(partial)
        except Exception as exc:
            raise failed(run, exc, record_failure) from exc
        run.architecture = model.architecture_  # what "auto" resolved to
        run.status, run.finished_at = "succeeded", utcnow()
        session.add(run)
        session.flush()
        path = folder / f"run-{run.id}"
        run.artifact_path = str(path)
        session.flush()
        if path.exists():  # left by a run whose transaction rolled back after saving
            shutil.rmtree(path)
        partial.rename(path)  # last: what raises before it leaves no folder behind
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return run


def new_run(
    experiment_id: int,
    params: dict[str, Any],
    frame: Any,
    created_by: str | None,
    tuning: dict[str, Any] | None = None,
) -> ModelRun:
    """The "running" ModelRun of a job on ``frame`` (not added to any session)."""
    return ModelRun(
        experiment_id=experiment_id,
        architecture=params["architecture"],
        status="running",
        params=params if tuning is None else {**params, "tuning": tuning},
        created_by=created_by,
        data_fingerprint=frame_fingerprint(frame, features_of(frame), OUTCOMES),
        created_at=utcnow(),
    )


def failed(
    run: ModelRun, exc: Exception, record_failure: Callable[[ModelRun], None] | None
) -> TrainingFailedError:
    """Mark ``run`` failed, let ``record_failure`` commit it, and the error that names it."""
    run.status, run.error, run.finished_at = "failed", f"{exc.__class__.__name__}: {exc}", utcnow()
    run.metrics = {}
    error = run.error
    if record_failure is not None:
        try:
            record_failure(run)
        except Exception as record_exc:  # noqa: BLE001 - the training error is the one to show
            error += f" (the failed run could not be recorded: {record_exc})"
    return TrainingFailedError(run.id, error)
