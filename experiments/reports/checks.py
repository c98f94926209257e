"""Refutations (DoWhy) and the EconML cross-check for the report (reports layer).

Both run per treatment arm on control ∪ that arm, with the population features as covariates
(categoricals one-hot), on at most ``MAX_ROWS`` (refutations) or ``CROSS_CHECK_ROWS`` (the
cross-check, all arms together) units sampled at random; the report states the sample sizes and
that the section's effects and standard errors come from the sample. DoWhy and EconML are only
imported inside ``uplift.causal_refutation`` and ``uplift.causal``.

Five simulations per refuter by default: a test passes when the refuted effect is within 2
standard errors (se) of what it should be; the mean of k placebo estimates has a standard
deviation of about se/√k and that of k 80 % subsets about 0.5·se/√k, so with k = 5 a healthy
experiment fails the placebo test with probability P(|Z| > 2√5) ≈ 8e-6; more simulations refine
DoWhy's reported p-value, not the verdict, and cost one regression on up to ``MAX_ROWS`` rows each.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

MAX_ROWS = 100_000
CROSS_CHECK_ROWS = 20_000


def _design(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    import pandas as pd

    numeric = frame[[f for f in features if f not in categorical]].astype(float)
    dummies = pd.get_dummies(frame[categorical].astype(str), drop_first=True, dtype=float)
    dummies.columns = [f"c{i}" for i in range(dummies.shape[1])]  # DoWhy parses names as formulas
    numeric.columns = [f"x{i}" for i in range(numeric.shape[1])]
    return pd.concat([numeric.reset_index(drop=True), dummies.reset_index(drop=True)], axis=1)


def _sample(index: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(index, limit, replace=False)) if len(index) > limit else index


def _sample_note(per_arm: list[dict[str, Any]], limit: int) -> str:
    sampled = [a for a in per_arm if a["n_users"] < a["n_available"]]
    if not sampled:
        return "all units of control and each arm"
    sizes = ", ".join(f"{a['arm']} {a['n_users']:,} of {a['n_available']:,}" for a in sampled)
    return (
        f"a random sample of at most {limit:,} units of control and each arm ({sizes}); "
        "effects and standard errors come from that sample"
    )


def refutations(
    frame: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    arms: list[str],
    *,
    seed: int,
    num_simulations: int = 5,
) -> dict[str, Any]:
    from uplift.causal_refutation import refute_effect

    rng = np.random.default_rng([seed, 11])
    labels = frame["arm"].to_numpy()
    per_arm = []
    for arm in arms:
        available = np.flatnonzero((labels == "none") | (labels == arm))
        rows = _sample(available, MAX_ROWS, rng)
        part = frame.iloc[rows]
        data = _design(part, features, categorical)
        data["treated"] = (part["arm"].to_numpy() == arm).astype(int)
        data["outcome"] = part["conversion"].to_numpy(dtype=float)
        causes = [c for c in data.columns if c not in ("treated", "outcome")]
        result = refute_effect(
            data, "treated", "outcome", causes, num_simulations=num_simulations, random_state=seed
        )
        result["common_causes"] = [f for f in features]  # the readable names, not x0/c0
        result["n_available"] = int(len(available))
        per_arm.append({"arm": arm, "outcome": "conversion", **result})
    return {
        "max_rows": MAX_ROWS,
        "sample": _sample_note(per_arm, MAX_ROWS),
        "arms": per_arm,
        "passed": all(a["passed"] for a in per_arm),
    }


def cross_check(
    frame: pd.DataFrame,
    features: list[str],
    effects: np.ndarray,
    columns: dict[str, int],
    *,
    seed: int,
) -> dict[str, Any]:
    """DRLearner average effect and causal-forest rank agreement with our per-user effects."""
    from scipy.stats import spearmanr

    from uplift.causal import make_peer

    rng = np.random.default_rng([seed, 13])
    labels = frame["arm"].to_numpy()
    keep = (labels == "none") | np.isin(labels, list(columns))
    available = int(keep.sum())
    rows = _sample(np.flatnonzero(keep), CROSS_CHECK_ROWS, rng)
    part = frame.iloc[rows]
    X, t, y = part[features], part["arm"].to_numpy(), part["conversion"].to_numpy(dtype=float)
    with warnings.catch_warnings():
        # EconML 0.17 leaves scikit-learn defaults that scikit-learn 1.9 announces will change
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
        # its linear final stage sees features that are collinear by construction (category
        # shares summing to one); the average effect is unaffected, its coefficients unused
        warnings.filterwarnings(
            "ignore", message="Co-variance matrix is underdetermined", module="econml"
        )
        dr = make_peer("dr_learner", random_state=seed).fit(X, t, y, control="none")
        forest = make_peer("causal_forest", random_state=seed).fit(X, t, y, control="none")
        dr_effects, forest_effects = dr.effect(X), forest.effect(X)
    out = []
    for arm, j in columns.items():
        k = list(dr.incentives_).index(arm)
        ours = effects[rows, j]
        rank = spearmanr(ours, forest_effects[:, k]).statistic
        treated, control = labels[rows] == arm, labels[rows] == "none"
        out.append(
            {
                "arm": arm,
                "outcome": "conversion",
                "observed_difference": float(y[treated].mean() - y[control].mean()),
                "ours_average_effect": float(ours.mean()),
                "dr_learner_average_effect": float(dr_effects[:, k].mean()),
                "causal_forest_average_effect": float(forest_effects[:, k].mean()),
                "rank_agreement_spearman": None if np.isnan(rank) else float(rank),
            }
        )
    return {
        "n_users": int(len(rows)),
        "n_available": available,
        "sample": (
            f"a random sample of {len(rows):,} of the {available:,} units; every number of "
            "this section comes from that sample"
            if len(rows) < available
            else f"all {available:,} units"
        ),
        "dr_learner": dr.name,
        "causal_forest": forest.name,
        "arms": out,
    }
