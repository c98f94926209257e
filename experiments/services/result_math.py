"""Turning sufficient statistics into an experiment's results (services layer, pure functions).

One metric × variant comparison per call, chosen by the experiment's design: always-valid
sequential (default), group sequential with Lan–DeMets spending, fixed horizon, or Bayesian. The
Bayesian chance to win is shown for every design; guardrails are tested one-sided for harm outside
the multiple-testing family; goal metrics get Holm-adjusted p-values across variants × metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from experiments.stats import (
    adjust_family,
    bayesian_test,
    group_sequential_test,
    guardrail_test,
    lan_demets_boundaries,
    sequential_test,
    srm_check,
    welch_test,
)

HARM_ALPHA = 0.05


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def variant_mean(row: Any) -> float | None:
    if row.n == 0:
        return None
    if row.kind == "ratio":
        denominator = row.denominator_sum or 0.0
        return row.sum / denominator if denominator else None
    return row.sum / row.n


def compare(
    control_row: Any,
    treatment_row: Any,
    *,
    design: Mapping[str, Any],
    cuped: bool,
    boundaries: Any,
    role: str,
    higher_is_better: bool,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Lift of treatment over control (relative), with interval, p-value and chance to win."""
    c = control_row.to_statistic(cuped=cuped)
    t = treatment_row.to_statistic(cuped=cuped)
    alpha = float(design.get("alpha", 0.05))
    kind = design.get("type", "sequential")
    out: dict[str, Any] = {"design": kind}
    if kind == "sequential":
        result = sequential_test(
            c, t, alpha=alpha, relative=True, tuning_n=design.get("n_star", 10_000)
        )
    elif kind == "group_sequential" and boundaries is not None:
        gs = group_sequential_test(c, t, boundaries, len(boundaries.boundaries) - 1, relative=True)
        out["boundary"] = gs.boundary
        out["reject"] = gs.reject
        result = welch_test(c, t, alpha=alpha, relative=True)
    else:
        result = welch_test(c, t, alpha=alpha, relative=True)
    bayes = bayesian_test(c, t, relative=True, alpha=alpha, inverse=not higher_is_better)
    error = result.error or None
    p_value = None if error else _finite(result.p_value)
    running = p_value
    if kind == "sequential" and previous and previous.get("p_value_running_min") is not None:
        running = (
            min(previous["p_value_running_min"], p_value)
            if p_value is not None
            else previous["p_value_running_min"]
        )
    out.update(
        lift=None if error else _finite(result.effect),
        ci=None if error else [_finite(result.ci_low), _finite(result.ci_high)],
        p_value=p_value,
        p_value_running_min=running,
        chance_to_win=None if bayes.error else _finite(bayes.chance_to_win),
        error=error,
    )
    if role == "guardrail":
        harm = guardrail_test(
            c, t, higher_is_better=higher_is_better, alpha=HARM_ALPHA, relative=True
        )
        out["harm_p_value"] = None if harm.error else _finite(harm.p_value)
        out["harm"] = bool(out["harm_p_value"] is not None and out["harm_p_value"] < HARM_ALPHA)
    return out


def group_sequential_looks(
    design: Mapping[str, Any], n_units: int, previous: Mapping[str, Any] | None
) -> tuple[list[float], Any]:
    """Information fractions of the looks so far (this one last) and their boundaries.

    The fraction is units so far over the planned size; a refresh with no new information reuses
    the last look (Lan & DeMets 1983: boundaries depend only on the fractions actually observed).
    """
    planned = float(design.get("planned_n", 10_000))
    fractions = list((previous or {}).get("information_fractions", []))
    now = min(1.0, n_units / planned) if planned > 0 else 1.0
    if now > 0 and (not fractions or now > fractions[-1]):
        fractions.append(now)
    if not fractions:
        return [], None
    boundaries = lan_demets_boundaries(
        fractions,
        alpha=float(design.get("alpha", 0.05)),
        spending=design.get("spending", "obrien_fleming"),
        sides=2,
    )
    return fractions, boundaries


def significant(comparison: Mapping[str, Any], alpha: float) -> bool:
    if comparison.get("error"):
        return False
    if comparison.get("design") == "group_sequential":
        return bool(comparison.get("reject"))
    p = comparison.get("p_value_adjusted", comparison.get("p_value_running_min"))
    return p is not None and p < alpha


def adjust(metrics: list[dict[str, Any]]) -> None:
    """Holm-adjust the goal metrics' p-values (running minima) in place."""
    family = {}
    for metric in metrics:
        if metric["role"] == "guardrail":
            continue
        for variant in metric["variants"][1:]:
            p = variant.get("p_value_running_min")
            if p is not None:
                family[(variant["variant"], metric["metric"])] = p
    adjusted = adjust_family(family, "holm") if family else {}
    for metric in metrics:
        for variant in metric["variants"][1:]:
            key = (variant["variant"], metric["metric"])
            if key in adjusted:
                variant["p_value_adjusted"] = adjusted[key]


def srm(counts: Sequence[int], weights: Sequence[float]) -> dict[str, Any]:
    result = srm_check(list(counts), list(weights))
    total = sum(weights)
    return {
        "p_value": None if result.error else _finite(result.p_value),
        "alert": bool(result.alert),
        "observed": [int(c) for c in counts],
        "expected_share": [w / total for w in weights],
        "error": result.error,
    }


def recommend(
    metrics: list[dict[str, Any]], srm_result: Mapping[str, Any], design: Mapping[str, Any]
) -> dict[str, str]:
    """What the engine suggests; a person decides (declaring the winner is theirs)."""
    alpha = float(design.get("alpha", 0.05))
    if srm_result.get("alert"):
        return {
            "action": "investigate",
            "reason": f"sample ratio mismatch (p = {srm_result['p_value']:.2g}): the split does not "
            "match the weights, so the results cannot be trusted until the cause is found",
        }
    harmed: dict[str, list[str]] = {}
    for metric in metrics:
        if metric["role"] == "guardrail":
            for v in metric["variants"][1:]:
                if v.get("harm"):
                    harmed.setdefault(v["variant"], []).append(metric["metric"])
    primary = next((m for m in metrics if m["role"] == "primary"), None)
    if primary is None:
        return {"action": "keep running", "reason": "no primary metric is defined"}
    treatments = primary["variants"][1:]
    winners = [
        v
        for v in treatments
        if significant(v, alpha) and (v["lift"] or 0) > 0 and v["variant"] not in harmed
    ]
    harm_note = "".join(
        f"; {variant} is excluded: it harms {', '.join(names)}" for variant, names in harmed.items()
    )
    if winners:
        best = max(winners, key=lambda v: v["lift"])
        return {
            "action": f"ship {best['variant']}",
            "reason": f"{primary['metric']} lift {best['lift']:+.2%} "
            f"(interval {best['ci'][0]:+.2%} to {best['ci'][1]:+.2%}) is significant{harm_note}",
        }
    if harmed:
        return {"action": "stop", "reason": harm_note.removeprefix("; ")}
    losers = [v for v in treatments if significant(v, alpha) and (v["lift"] or 0) < 0]
    if treatments and len(losers) == len(treatments):
        return {"action": "stop", "reason": f"every treatment lowers {primary['metric']}"}
    n = sum(v["n"] for v in primary["variants"])
    target = design.get("planned_n") or design.get("n_star")
    progress = f" ({n:,} of ~{int(target):,} planned units)" if target else ""
    return {"action": "keep running", "reason": f"no significant difference yet{progress}"}
