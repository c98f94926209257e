"""Average effects per metric and arm for the report (reports layer).

Every number comes from the statistics engine applied to the sufficient statistics the database
returns (``experiment_statistics``): relative lifts with fixed-horizon (Welch) and always-valid
sequential intervals, unadjusted and CUPED side by side, the absolute difference in means, and
Holm-adjusted p-values over the goal metrics (primary and secondary) × treatment arms, for the
fixed p-values here and, from the latest stored snapshot, for the running-minimum sequential
p-values the results page shows.
"""

from __future__ import annotations

import math
from typing import Any

from experiments.analysis import MetricStatistics
from experiments.services import result_math
from experiments.stats import adjust_family, sequential_test, welch_test


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _test(result: Any) -> dict[str, Any]:
    if result.error:
        return {"effect": None, "ci": None, "p_value": None, "se": None, "error": result.error}
    return {
        "effect": _finite(result.effect),
        "ci": [_finite(result.ci_low), _finite(result.ci_high)],
        "p_value": _finite(result.p_value),
        "se": _finite(result.se),
        "error": None,
    }


def compare_rows(
    control: MetricStatistics, treatment: MetricStatistics, *, alpha: float, tuning_n: float
) -> dict[str, Any]:
    """Fixed and sequential tests of one treatment row against control, with and without CUPED."""
    out: dict[str, Any] = {}
    for adjusted in (False, True):
        name = "cuped" if adjusted else "unadjusted"
        if adjusted and not (control.has_covariate and control.kind != "ratio"):
            out[name] = None
            continue
        c = control.to_statistic(cuped=adjusted)
        t = treatment.to_statistic(cuped=adjusted)
        out[name] = {
            "fixed": _test(welch_test(c, t, alpha=alpha, relative=True)),
            "sequential": _test(
                sequential_test(c, t, alpha=alpha, relative=True, tuning_n=tuning_n)
            ),
        }
    c, t = control.to_statistic(cuped=False), treatment.to_statistic(cuped=False)
    out["difference"] = _test(welch_test(c, t, alpha=alpha, relative=False))
    return out


def average_effects(
    rows: list[MetricStatistics],
    design: dict[str, Any],
    metric_names: dict[str, str],
    snapshot: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """One entry per metric × treatment arm (control first gives each metric its baseline)."""
    alpha = float(design.get("alpha", 0.05))
    tuning_n = float(design.get("n_star", 10_000))
    grouped: dict[str, list[MetricStatistics]] = {}
    for row in rows:
        grouped.setdefault(row.metric_key, []).append(row)
    stored = {
        (m["metric"], v["variant"]): v
        for m in (snapshot or {}).get("metrics", [])
        for v in m.get("variants", [])
    }
    out: list[dict[str, Any]] = []
    for metric_key, variant_rows in grouped.items():
        control = variant_rows[0]
        for row in variant_rows[1:]:
            snap = stored.get((metric_key, row.variant_key), {})
            out.append(
                {
                    "metric": metric_key,
                    "name": metric_names.get(metric_key, metric_key),
                    "role": control.role or "secondary",
                    "kind": control.kind,
                    "variant": row.variant_key,
                    "control_variant": control.variant_key,
                    "n_control": int(control.n),
                    "n_variant": int(row.n),
                    "mean_control": _finite(result_math.variant_mean(control)),
                    "mean_variant": _finite(result_math.variant_mean(row)),
                    **compare_rows(control, row, alpha=alpha, tuning_n=tuning_n),
                    "p_value_running_min": snap.get("p_value_running_min"),
                    "p_value_adjusted_sequential": snap.get("p_value_adjusted"),
                    "chance_to_win": snap.get("chance_to_win"),
                }
            )
    family = {
        (e["variant"], e["metric"]): e["unadjusted"]["fixed"]["p_value"]
        for e in out
        if e["role"] != "guardrail" and e["unadjusted"]["fixed"]["p_value"] is not None
    }
    adjusted = adjust_family(family, "holm") if family else {}
    for entry in out:
        entry["p_value_adjusted_fixed"] = adjusted.get((entry["variant"], entry["metric"]))
    order = {"primary": 0, "secondary": 1, "guardrail": 2}
    out.sort(key=lambda e: order.get(e["role"], 3))
    return out
