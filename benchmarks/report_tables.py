"""The tables of the report benchmark (benchmarks/report.py): end-to-end runs, phases, peers,
and what the report says against the simulator's truth."""

from __future__ import annotations

import math
import re
from typing import Any

PHASES = (
    "statistics",
    "quality",
    "unit_outcomes",
    "uplift_training",
    "heterogeneity",
    "refutations",
    "cross_check",
)


def _said(line: str) -> tuple[float, float]:
    found = re.search(r"built in ([\d.]+) s, rendered and written in ([\d.]+) s", line)
    return (float(found.group(1)), float(found.group(2))) if found else (math.nan, math.nan)


def _on(report: dict[str, Any]) -> dict[str, str]:
    """What each phase ran on, as the report states it."""
    n = report["data_quality"]["n_units"]
    model = (report.get("heterogeneity") or {}).get("model") or {}
    refutations = report.get("refutations") or {}
    cross = report.get("cross_check") or {}
    sizes = [f"{a['n_users']:,}/{a['n_available']:,}" for a in refutations.get("arms", [])]
    return {
        "statistics": f"all {n:,} units (SQL pushdown, every metric and arm, CUPED)",
        "quality": f"all {n:,} units (SQL; balance on the per-unit frame)",
        "unit_outcomes": f"{n:,} per-unit rows from the database, joined to the features",
        "uplift_training": f"{model.get('n_train', 0):,} of {model.get('n_train_available', 0):,}"
        " training units",
        "heterogeneity": f"scores all {n:,}; curves on {model.get('n_evaluated', 0):,} held out",
        "refutations": "control ∪ arm, sampled: " + ", ".join(sizes),
        "cross_check": f"{cross.get('n_users', 0):,} of {cross.get('n_available', 0):,} units",
    }


def format_tables(setup: dict[str, Any], runs: list[dict[str, Any]], peers: dict) -> str:  # type: ignore[type-arg]
    report = runs[0]["report"]
    key = report["experiment"]["key"]
    lines = [
        f"One experiment, {setup['users']:,} users in 4 arms (control, discount_20, coupon_5, "
        f"free_shipping), {setup['events']:,} events, PostgreSQL. Set-up, not part of the "
        f"report: simulate {setup['simulate_s']:.0f} s, COPY load + indexes "
        f"{setup['load_s']:.0f} s, one results refresh {setup['refresh_s']:.0f} s.",
        "",
        "| command | wall (s) | under 5 min | peak RSS (MB) | output (bytes) | build (s) "
        "| render + write (s) | start-up and imports (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        built, rendered = _said(run["said"])
        lines.append(
            f"| `liftlab report {key} --format {run['format']}` | {run['seconds']:.1f} | "
            f"{'yes' if run['seconds'] < 300 else '**no**'} | {run['peak_mb']:,.0f} | "
            f"{run['bytes']:,} | {built:.1f} | {rendered:.2f} | "
            f"{run['seconds'] - built - rendered:.1f} |"
        )
    on = _on(report)
    lines += ["", "Phases of the build (seconds, from `appendix.timings_seconds`):", ""]
    lines.append("| phase | " + " | ".join(r["format"] for r in runs) + " | on |")
    lines.append("|---|" + "---:|" * len(runs) + "---|")
    for phase in PHASES:
        cells = [
            f"{r['report']['appendix']['timings_seconds'].get(phase, math.nan):.1f}" for r in runs
        ]
        lines.append(f"| {phase} | " + " | ".join(cells) + f" | {on[phase]} |")
    timings = report["appendix"]["timings_seconds"]
    if peers:
        lines += ["", "Peers in the same run (each in its own process):", ""]
        lines += [
            "| work | liftlab (s) | peer | peer (s) | peer / liftlab | peer peak RSS (MB) "
            "| agreement |",
            "|---|---:|---|---:|---:|---:|---|",
        ]
    if "ols" in peers:
        peer = peers["ols"]
        ours = {f"{e['metric']}/{e['variant']}": e["difference"] for e in report["average_effects"]}
        diff = max(
            abs(v["effect"] - ours[k]["effect"]) / max(abs(ours[k]["effect"]), 1e-12)
            for k, v in peer["effects"].items()
        )
        se = max(abs(v["se"] - ours[k]["se"]) / ours[k]["se"] for k, v in peer["effects"].items())
        lines.append(
            f"| average effects, all metrics × arms, plain and CUPED | {timings['statistics']:.1f}"
            f" | statsmodels OLS (HC2) on {peer['rows_loaded']:,} rows loaded by pandas "
            f"`read_sql_query` ({peer['load_seconds']:.0f} s of it loading) | "
            f"{peer['seconds']:.1f} | {peer['seconds'] / timings['statistics']:.1f}x | "
            f"{peer['peak_mb']:,.0f} | differences: max rel. diff {diff:.1e}, SE {se:.1e} |"
        )
    if "drlearner" in peers:
        peer = peers["drlearner"]
        ours_s = timings["uplift_training"] + timings["heterogeneity"]
        truth = setup["true_ate"]
        gap = max(abs(peer["average_effects"][a] - t) for a, t in truth.items())
        lines.append(
            f"| heterogeneity model: fit on {peer['n_train']:,} units + score "
            f"| {ours_s:.1f} | EconML DRLearner alone, same {peer['n_train']:,} training units, "
            f"scoring {peer['n_scored']:,} held out | {peer['seconds']:.1f} | "
            f"{peer['seconds'] / ours_s:.1f}x | {peer['peak_mb']:,.0f} | DRLearner ATE within "
            f"{gap:.4f} of the truth |"
        )
    lines += ["", "What the report says (the first run), against the simulator's truth:", ""]
    lines += [
        "| arm | conversion difference | 95 % CI | true ATE | covered |",
        "|---|---:|---|---:|---|",
    ]
    for effect in report["average_effects"]:
        if effect["metric"] != "conversion":
            continue
        arm = next(
            v["incentive"]
            for v in report["experiment"]["variants"]
            if v["key"] == effect["variant"]
        )
        block, true = effect["difference"], setup["true_ate"][arm]
        low, high = block["ci"]
        lines.append(
            f"| {arm} | {block['effect']:+.5f} | [{low:+.5f}, {high:+.5f}] | {true:+.5f} | "
            f"{'yes' if low < true < high else 'no'} |"
        )
    refuted = report.get("refutations") or {}
    lines += [
        "",
        f"SRM p = {report['data_quality']['srm']['p_value']:.3g}; refutations passed: "
        f"{refuted.get('passed')}; flags: {'; '.join(report['flags']) or 'none'}.",
    ]
    return "\n".join(lines)
