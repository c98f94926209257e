"""The report's tables, shared by the CSV and HTML renderings so that they agree (reports layer).

``tables(report)`` → ``{name: (columns, rows)}`` with the raw JSON values; CSV writes them at full
precision, HTML shows ``fmt(value)`` of the same cells.
"""

from __future__ import annotations

from typing import Any

Table = tuple[list[str], list[list[Any]]]
# tables the HTML draws as charts instead of listing them (the CSV keeps every point)
CSV_ONLY = frozenset({"curve_points"})


def fmt(value: Any) -> str:
    """How a cell is shown in HTML: 4 significant digits, thousands separators for counts."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ci(ci: list[Any] | None) -> list[Any]:
    return [ci[0], ci[1]] if ci else [None, None]


def _test(block: dict[str, Any] | None) -> list[Any]:
    if not block:
        return [None] * 4
    return [block["effect"], *_ci(block["ci"]), block["p_value"]]


def _effects(report: dict[str, Any]) -> Table:
    columns = ["metric", "role", "variant", "n_control", "n_variant", "mean_control"]
    columns += ["mean_variant"]
    for prefix in ("fixed", "sequential", "cuped_fixed", "cuped_sequential"):
        columns += [f"{prefix}_lift", f"{prefix}_ci_low", f"{prefix}_ci_high", f"{prefix}_p"]
    columns += ["difference", "difference_ci_low", "difference_ci_high", "difference_p"]
    columns += ["p_adjusted_holm_fixed", "p_running_min", "p_adjusted_holm_sequential"]
    columns += ["chance_to_win"]
    rows = []
    for e in report["average_effects"]:
        cuped = e.get("cuped") or {}
        rows.append(
            [e["metric"], e["role"], e["variant"], e["n_control"], e["n_variant"]]
            + [e["mean_control"], e["mean_variant"]]
            + _test(e["unadjusted"]["fixed"])
            + _test(e["unadjusted"]["sequential"])
            + _test(cuped.get("fixed"))
            + _test(cuped.get("sequential"))
            + _test(e["difference"])
            + [e["p_value_adjusted_fixed"], e["p_value_running_min"]]
            + [e["p_value_adjusted_sequential"], e["chance_to_win"]]
        )
    return columns, rows


def _plain(rows: list[dict[str, Any]] | None, columns: list[str]) -> Table:
    return columns, [[row.get(c) for c in columns] for row in rows or []]


def tables(report: dict[str, Any]) -> dict[str, Table]:
    out: dict[str, Table] = {"average_effects": _effects(report)}
    quality = report["data_quality"]
    srm = quality["srm"]
    variants = [v["key"] for v in report["experiment"]["variants"]]
    out["srm"] = (
        ["variant", "observed", "expected_share", "p_value", "alert"],
        [
            [v, n, share, srm["p_value"], srm["alert"]]
            for v, n, share in zip(variants, srm["observed"], srm["expected_share"], strict=False)
        ],
    )
    out["exposures_by_day"] = _plain(quality["exposures_by_day"], ["day", "variant", "n"])
    windows = quality["events_outside_windows"]
    out["events_outside_windows"] = (
        ["window_hours", "events_of_exposed_units", "before_first_exposure", "after_window"],
        [
            [
                windows["window_hours"],
                windows["events_of_exposed_units"],
                windows["before_first_exposure"],
                windows["after_window"],
            ]
        ],
    )
    balance = ["feature", "level", "arm", "control_mean", "arm_mean", "smd", "flag", "suppressed"]
    out["balance"] = _plain(quality.get("balance"), balance)
    het = report.get("heterogeneity") or {}
    quantiles = ["q05", "q10", "q25", "q50", "q75", "q90", "q95"]
    out["effect_distribution"] = (
        ["arm", "outcome", "n_users", "mean", "share_negative", *quantiles],
        [
            [d["arm"], d["outcome"], d["n_users"], d["mean"], d["share_negative"]]
            + [d["quantiles"][q] for q in quantiles]
            for d in het.get("effect_distribution", [])
        ],
    )
    comparison = ["n_control", "n_arm", "conversions_control", "conversions_arm"]
    comparison += ["observed_effect", "observed_ci_low", "observed_ci_high", "observed_p_value"]

    def compared(row: dict[str, Any]) -> list[Any]:
        return [row["n_control"], row["n_arm"], row["conversions_control"]] + [
            row["conversions_arm"],
            row["observed_effect"],
            *_ci(row["observed_ci"]),
            row["observed_p_value"],
        ]

    out["segments"] = (
        ["feature", "level", "arm", *comparison, "model_effect", "suppressed"],
        [
            [s["feature"], s["level"], s["arm"], *compared(s), s["model_effect"], s["suppressed"]]
            for s in het.get("segments", [])
        ],
    )
    out["calibration"] = (
        ["arm", "decile", "predicted_effect", *comparison, "suppressed"],
        [
            [c["arm"], c["decile"], c["predicted_effect"], *compared(c), c["suppressed"]]
            for c in het.get("calibration", [])
        ],
    )
    curves = het.get("curves", [])
    out["uplift_scores"] = _plain(
        curves, ["arm", "n_users", "qini_auc", "uplift_auc", "uplift_at_30"]
    )
    points = []
    for c in curves:
        for name in ("qini_curve", "uplift_curve"):
            curve = c.get(name) or {"index": [], "x": [], "y": []}
            points += [
                [c["arm"], name, i, x, y]
                for i, x, y in zip(curve["index"], curve["x"], curve["y"], strict=True)
            ]
    out["curve_points"] = (["arm", "curve", "index", "x", "y"], points)
    refutation_rows = []
    for arm in (report.get("refutations") or {}).get("arms", []):
        for t in arm["tests"]:
            refutation_rows.append(
                [arm["arm"], t["test"], t["estimated_effect"], t["new_effect"], t["expected"]]
                + [t["gap_in_se"], t["dowhy_p_value"], t["passed"]]
            )
    out["refutations"] = (
        ["arm", "test", "estimated_effect", "new_effect", "expected", "gap_in_se"]
        + ["dowhy_p_value", "passed"],
        refutation_rows,
    )
    check = ["arm", "observed_difference", "ours_average_effect", "dr_learner_average_effect"]
    check += ["causal_forest_average_effect", "rank_agreement_spearman"]
    out["cross_check"] = _plain((report.get("cross_check") or {}).get("arms"), check)
    strategy = ["key", "name", "status", "objective", "model_run_id", "budget"]
    strategy += ["holdout_share", "explore_share"]
    out["strategies"] = _plain(report["decision"]["strategies"], strategy)
    return out
