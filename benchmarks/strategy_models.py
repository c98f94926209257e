"""Effect estimates that feed the strategy benchmark: liftlab's UpliftModel and a T-learner peer.

Both are fitted on one randomized experiment of the simulated shop and predict, for every user,
the incremental profit and the expected spend of each incentive; ``benchmarks/strategy.py`` then
allocates on those estimates and scores the plans with the simulator's true effects.

- :func:`uplift_model_estimate` follows the product's path exactly: ``uplift.UpliftModel`` trained
  jointly on (conversion, revenue) like ``experiments.jobs.train``; conversion probability and
  order value per arm, calibrated to the experiment's average conversion effects, by
  ``experiments.jobs.strategy_run.predicted_outcomes``; the catalog's cost models
  (``strategy_run.cost_model``) and ``experiments.strategy.economics.incentive_economics`` turn
  them into value and cost. The margin rate is each user's category margin, which the shop knows
  (affinity-weighted ``CATEGORY_MARGIN``; the product's job takes the same as ``margin_rate``).
- :func:`t_learner_estimate`: per arm, gradient-boosted regressors of realized margin and spend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Estimate:
    """Per user: estimated value and cost of each incentive ``(n, k)``; predicted margin per arm
    ``(n, k + 1)`` (column 0 = none), the reward model of the DR estimator."""

    name: str
    value: np.ndarray
    cost: np.ndarray
    margin: np.ndarray
    fit_seconds: float


def shop_features(shop) -> list[str]:  # type: ignore[no-untyped-def]
    return [c for c in shop.users.columns if c != "unit_id"]


def category_margin(users: pd.DataFrame) -> np.ndarray:
    """Each user's gross margin rate: category affinities weighted by the category margins."""
    from experiments.simulation.population import CATEGORIES, CATEGORY_MARGIN

    affinity = users[[f"affinity_{c}" for c in CATEGORIES]].to_numpy()
    return affinity @ CATEGORY_MARGIN


def catalog_cost_models(shop):  # type: ignore[no-untyped-def]
    """The simulator's incentives as catalog rows (as the demo stores them), priced by the job."""
    from experiments.db import Incentive
    from experiments.jobs.strategy_run import cost_model

    return [
        cost_model(
            Incentive(
                key=i.key,
                name=i.name,
                kind=i.kind,
                params=dict(i.params),
                cost_model={"model": i.cost_model},
            )
        )
        for i in shop.incentives
    ]


def uplift_model_estimate(shop, log: pd.DataFrame, max_epochs: int | None = None) -> Estimate:  # type: ignore[no-untyped-def]
    """liftlab's torch model with its defaults (``max_epochs`` lowers the cap for smoke runs)."""
    from experiments.jobs.strategy_run import predicted_outcomes
    from experiments.strategy import incentive_economics
    from uplift import UpliftModel

    features = shop_features(shop)
    data = log.assign(conversion=log["converted"].astype(float))
    params = {} if max_epochs is None else {"max_epochs": max_epochs}
    start = time.perf_counter()
    model = UpliftModel(random_state=0, verbose=False, **params).fit(
        data[features],
        data["treatment"].to_numpy(),
        data[["conversion", "revenue"]],
        control="none",
    )
    seconds = time.perf_counter() - start
    arms = shop.arms[1:]
    base = data.loc[data["treatment"] == "none", "conversion"].mean()
    calibration = {
        a: {"experiment_ate": float(data.loc[data["treatment"] == a, "conversion"].mean() - base)}
        for a in arms
    }
    p, order_value = predicted_outcomes(model, shop.users[features], arms, calibration)
    rate = category_margin(shop.users)
    eco = incentive_economics(
        p, order_value, catalog_cost_models(shop), margin_rate=rate, objective="profit"
    )
    gross = rate[:, None] * p * order_value
    margin = gross - np.column_stack([np.zeros(shop.n_users), eco.cost])
    return Estimate("liftlab UpliftModel", eco.value, eco.cost, margin, seconds)


def t_learner(frame: pd.DataFrame, features: list[str], targets: list[str], arms: list[str]):  # type: ignore[no-untyped-def]
    """Per arm and target a gradient-boosted regressor; returns predict(X) -> {target: (n, k)}.

    Strongly regularized (shallow trees, large leaves): outcomes such as spend are zero-inflated
    and heavy-tailed, and a flexible fit per arm turns noise into fake heterogeneity.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    models = {}
    for t in targets:
        for a in arms:
            part = frame[frame["treatment"] == a]
            model = HistGradientBoostingRegressor(
                max_iter=100,
                learning_rate=0.05,
                max_depth=3,
                min_samples_leaf=200,
                random_state=0,
            )
            models[t, a] = model.fit(part[features], part[t])

    def predict(x: pd.DataFrame) -> dict[str, np.ndarray]:
        return {t: np.column_stack([models[t, a].predict(x) for a in arms]) for t in targets}

    return predict


def _codes(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    out = frame[features].copy()
    for c in out.select_dtypes("category").columns:
        out[c] = out[c].cat.codes
    return out


def t_learner_estimate(shop, log: pd.DataFrame) -> Estimate:  # type: ignore[no-untyped-def]
    """scikit-learn T-learner of realized margin and incentive spend per arm."""
    features = shop_features(shop)
    train = pd.concat(
        [_codes(log, features), log[["treatment", "margin", "incentive_cost"]]], axis=1
    )
    start = time.perf_counter()
    predict = t_learner(train, features, ["margin", "incentive_cost"], shop.arms)
    seconds = time.perf_counter() - start
    pred = predict(_codes(shop.users, features))
    margin = pred["margin"]
    value = margin[:, 1:] - margin[:, :1]
    cost = np.maximum(pred["incentive_cost"][:, 1:], 0.0)
    return Estimate("sklearn T-learner", value, cost, margin, seconds)
