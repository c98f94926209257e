"""Refutation tests of an average treatment effect with DoWhy (uplift layer; dowhy imported lazily).

``refute_effect(data, treatment, outcome, common_causes)`` estimates the effect of a binary
treatment by backdoor linear regression (DoWhy's ``backdoor.linear_regression``) and runs three
DoWhy refuters (Sharma & Kiciman 2020, "DoWhy: An End-to-End Library for Causal Inference",
section 4.3):

* placebo treatment (the treatment column permuted): the new effect should be ~0;
* random common cause (an independent random covariate added): the effect should not move;
* data subset (re-estimated on random 80 % subsets): the effect should not move;

plus a randomization check that needs no refuter: on randomized data the effect adjusted for the
observed pre-treatment covariates equals the unadjusted difference in means up to noise; a gap
means the treatment depends on the covariates (it was not randomized, or the data are broken).

Pass rule for each test: the refuted effect lies within ``tolerance`` standard errors of what it
should be (0 for the placebo, the original effect for the others), the standard error being the
one of the unadjusted difference in means. DoWhy's own p-value is reported next to it.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd

INSTALL_HINT = "pip install 'liftlab[causal]' (dowhy==0.14)"


def _dowhy() -> Any:
    try:
        return importlib.import_module("dowhy")
    except ImportError as exc:
        raise ImportError(f"dowhy is needed for refutations; install it: {INSTALL_HINT}") from exc


def _difference(data: pd.DataFrame, treatment: str, outcome: str) -> tuple[float, float]:
    treated = data[treatment].to_numpy() == 1
    y = data[outcome].to_numpy(dtype=float)
    a, b = y[~treated], y[treated]
    se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return float(b.mean() - a.mean()), se


def _p_value(refutation: Any) -> float | None:
    result = getattr(refutation, "refutation_result", None)
    if isinstance(result, dict) and result.get("p_value") is not None:
        return float(result["p_value"])
    return None


def refute_effect(
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    common_causes: list[str],
    *,
    num_simulations: int = 20,
    subset_fraction: float = 0.8,
    tolerance: float = 2.0,
    random_state: int = 0,
) -> dict[str, Any]:
    """Estimate, refute and judge; ``data`` holds numeric columns only (one-hot categoricals)."""
    dowhy = _dowhy()
    if set(np.unique(data[treatment])) - {0, 1}:
        raise ValueError(f"{treatment} must be 0/1 (control/treated)")
    data = data.assign(**{treatment: data[treatment].astype(bool)})
    unadjusted, se = _difference(
        data.assign(**{treatment: data[treatment].astype(int)}), treatment, outcome
    )
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # DoWhy and statsmodels warn on benign things (future defaults, perfect fits)
        warnings.simplefilter("ignore")
        model = dowhy.CausalModel(
            data=data, treatment=treatment, outcome=outcome, common_causes=common_causes
        )
        # maximal adjustment: the default searches every subset of the covariates (exponential)
        estimand = model.identify_effect(
            method_name="maximal-adjustment", proceed_when_unidentifiable=True
        )
        estimate = model.estimate_effect(estimand, method_name="backdoor.linear_regression")
        original = float(estimate.value)
        runs = {
            "placebo_treatment": model.refute_estimate(
                estimand,
                estimate,
                method_name="placebo_treatment_refuter",
                placebo_type="permute",
                num_simulations=num_simulations,
                random_state=random_state,
            ),
            "random_common_cause": model.refute_estimate(
                estimand,
                estimate,
                method_name="random_common_cause",
                num_simulations=num_simulations,
                random_state=random_state,
            ),
            "data_subset": model.refute_estimate(
                estimand,
                estimate,
                method_name="data_subset_refuter",
                subset_fraction=subset_fraction,
                num_simulations=num_simulations,
                random_state=random_state,
            ),
        }
    tests = []
    for name, refutation in runs.items():
        expected = 0.0 if name == "placebo_treatment" else original
        new = float(refutation.new_effect)
        tests.append(
            {
                "test": name,
                "method": "dowhy",
                "estimated_effect": original,
                "new_effect": new,
                "expected": expected,
                "gap_in_se": abs(new - expected) / se if se > 0 else None,
                "dowhy_p_value": _p_value(refutation),
                "passed": bool(se > 0 and abs(new - expected) <= tolerance * se),
            }
        )
    tests.append(
        {
            "test": "randomization_check",
            "method": "covariate-adjusted vs unadjusted effect",
            "estimated_effect": unadjusted,
            "new_effect": original,
            "expected": unadjusted,
            "gap_in_se": abs(original - unadjusted) / se if se > 0 else None,
            "dowhy_p_value": None,
            "passed": bool(se > 0 and abs(original - unadjusted) <= tolerance * se),
        }
    )
    return {
        "estimator": "backdoor.linear_regression",
        "common_causes": list(common_causes),
        "n_users": int(len(data)),
        "unadjusted_effect": unadjusted,
        "standard_error": se,
        "adjusted_effect": original,
        "num_simulations": int(num_simulations),
        "tolerance_se": float(tolerance),
        "tests": tests,
        "passed": all(t["passed"] for t in tests),
    }
