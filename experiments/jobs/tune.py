"""Hyperparameter search for the uplift model with a causal criterion (Optuna), then one recorded
training run with the best parameters (jobs layer).

Splits, all seeded: the job's held-out test share (``train.held_out``, the same rows the final
run is evaluated on) never enters the search. The rest is split, stratified by arm, into search
training rows and search validation rows. Every trial fits ``UpliftModel`` (one network,
``n_estimators=1``, for speed) on the search training rows only; its score is the doubly-robust
pseudo-outcome loss (``uplift.selection.dr_loss``, Kennedy 2020 eq. 2) of its effects on the
search validation rows, whose pseudo-outcomes come from nuisance models fitted on the search
training rows (``uplift.selection.dr_pseudo_outcomes``): the trial's network never saw the rows
it is scored on, and the criterion measures effects, not the factual fit. The sampler is Optuna's
TPE with ``seed``, so one seed gives the same trials. The final model is trained through
``train.train_on_experiment`` (the same job as ``liftlab uplift train``) with the best parameters,
and its run's params keep the search summary under ``"tuning"``; ``record_failure`` commits that
run when it fails (``train.train_on_experiment``). A trial that fails fails the search, and the
search is then recorded the same way: a "failed" run with the fixed parameters, the error, and
under ``"tuning"`` the trials finished before it and the failed trial's number and parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from experiments.db import ModelRun
from experiments.errors import ValidationError
from experiments.jobs.train import (
    OUTCOMES,
    failed,
    features_of,
    held_out,
    model_params,
    new_run,
    train_on_experiment,
)
from experiments.jobs.training_data import training_frame
from experiments.services.experiments import get_experiment

if TYPE_CHECKING:
    import optuna
    import pandas as pd

REPRESENTATION_WIDTHS = (32, 64, 128, 200)
HEAD_WIDTHS = (16, 32, 64, 100)
# UpliftModel parameters the search sets; --params-json may fix any other one
SEARCHED = (
    "learning_rate",
    "representation",
    "head",
    "dropout",
    "weight_decay",
    "value_difference",
)
CRITERION = "dr_pseudo_outcome_loss"
SEARCH_VALIDATION_SHARE = 0.3  # of the rows outside the held-out test share


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """The search space, as UpliftModel parameters."""
    layers = trial.suggest_int("representation_layers", 1, 3)
    width = trial.suggest_categorical("representation_width", list(REPRESENTATION_WIDTHS))
    head = trial.suggest_categorical("head_width", list(HEAD_WIDTHS))
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "representation": [int(width)] * layers,
        "head": [int(head)],
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "value_difference": trial.suggest_float("value_difference", 0.1, 100.0, log=True),
    }


class _Objective:
    """One trial: fit on the search training rows, DR loss on the search validation rows."""

    def __init__(self, rows: pd.DataFrame, features: list[str], base: dict[str, Any], seed: int):
        from uplift.fitting import split

        self.X = rows[features]
        self.treatment = rows["arm"].to_numpy()
        self.y = rows[OUTCOMES]
        self.base, self.seed = base, seed
        # stratified by arm, as the model's own validation split (uplift.fitting.split)
        self.train_pos, self.val_pos = split(self.treatment, SEARCH_VALIDATION_SHARE, seed)
        self.pseudo: np.ndarray | None = None

    def _pseudo_outcomes(self, model: Any) -> np.ndarray:
        """Computed once, from the first fitted model's encoder, arms and outcome targets."""
        from uplift.selection import dr_pseudo_outcomes

        if self.pseudo is None:
            numeric, codes = model.encoder_.transform(self.X)
            arm = np.full(len(self.treatment), -1, np.int64)
            for j, label in enumerate(model.treatments_):  # 0 = control
                arm[self.treatment == label] = j
            targets = model.outcome_spec_.targets_array(self.y.to_numpy(dtype=np.float64))
            self.pseudo = dr_pseudo_outcomes(
                numeric,
                codes,
                arm,
                targets,
                len(model.treatments_),
                self.train_pos,
                self.val_pos,
                self.seed,
            )
        return self.pseudo

    def __call__(self, trial: optuna.Trial) -> float:
        from uplift import UpliftModel
        from uplift.selection import dr_loss

        params = {**self.base, **suggest(trial), "n_estimators": 1}
        tr, va = self.train_pos, self.val_pos
        try:
            model = UpliftModel(**params).fit(
                self.X.iloc[tr], self.treatment[tr], self.y.iloc[tr], control="none"
            )
        except (TypeError, ValueError) as exc:
            raise ValidationError("params", f"the uplift model rejected its input: {exc}") from exc
        pseudo = self._pseudo_outcomes(model)
        X_val = self.X.iloc[va]
        tau = np.stack(
            [mu[:, 1:] - mu[:, :1] for mu in model.outcomes_by_target(X_val).values()], axis=-1
        )
        trial.set_user_attr("params", {k: params[k] for k in SEARCHED})
        return dr_loss(pseudo, tau, np.ones(len(va)))


def _failed_search(study: optuna.Study, seed: int) -> dict[str, Any]:
    """What a search that a trial failed had done: its finished trials and the failed one."""
    import optuna

    states = optuna.trial.TrialState
    done = [t for t in study.trials if t.state == states.COMPLETE]
    bad = [t for t in study.trials if t.state == states.FAIL]
    return {
        "criterion": CRITERION,
        "sampler": f"TPESampler(seed={seed})",
        "trials": len(done),
        "failed_trial": bad[-1].number if bad else None,
        "failed_params": dict(bad[-1].params) if bad else None,
        "history": [
            {"number": t.number, "value": float(t.value), "params": t.user_attrs["params"]}
            for t in done
        ],
    }


def tune_on_experiment(
    session: Session,
    key: str,
    population: Any,
    artifact_dir: Path,
    *,
    trials: int,
    seed: int = 0,
    timeout: float | None = None,
    params: dict[str, Any] | None = None,
    test_share: float = 0.3,
    created_by: str | None = None,
    record_failure: Callable[[ModelRun], None] | None = None,
) -> tuple[ModelRun, dict[str, Any]]:
    """Search, then train and record the final model; returns (run, tuning summary)."""
    import optuna

    if int(trials) < 1:
        raise ValidationError("trials", f"must be at least 1, got {trials}")
    if timeout is not None and not timeout > 0:
        raise ValidationError("timeout", f"must be a positive number of seconds, got {timeout}")
    fixed = dict(params or {})
    clash = sorted(k for k in fixed if k in SEARCHED)
    if clash:
        raise ValidationError(
            "params",
            f"{', '.join(map(repr, clash))} is searched by tune; remove it from the fixed "
            "parameters (or train with it: liftlab uplift train --params-json)",
        )
    base = model_params(fixed, seed)  # validates the fixed parameters' names
    experiment = get_experiment(session, key)
    frame = training_frame(session, key, population)
    features = features_of(frame)
    search_rows = frame[~held_out(len(frame), test_share, seed)].reset_index(drop=True)
    objective = _Objective(search_rows, features, base, seed)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    try:
        study.optimize(objective, n_trials=int(trials), timeout=timeout)
    except Exception as exc:
        run = new_run(experiment.id, base, frame, created_by, _failed_search(study, seed))
        raise failed(run, exc, record_failure) from exc
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ValidationError("timeout", "no trial finished in time; raise --timeout")
    best = study.best_trial
    best_params = dict(best.user_attrs["params"])
    summary = {
        "criterion": CRITERION,
        "sampler": f"TPESampler(seed={seed})",
        "trials": len(done),
        "best_trial": best.number,
        "best_value": float(best.value),
        "best_params": best_params,
        "n_search_train": int(len(objective.train_pos)),
        "n_search_validation": int(len(objective.val_pos)),
        "history": [
            {"number": t.number, "value": float(t.value), "params": t.user_attrs["params"]}
            for t in done
        ],
    }
    run = train_on_experiment(
        session,
        key,
        population,
        artifact_dir,
        params={**fixed, **best_params},
        test_share=test_share,
        seed=seed,
        created_by=created_by,
        tuning=summary,
        frame=frame,
        record_failure=record_failure,
    )
    return run, summary
