"""Render a report dict as JSON, a zip of CSV tables, or one self-contained HTML page.

``render(report, "json"|"csv"|"html")`` → (bytes, media type, file name). The HTML has inline CSS
and inline SVG charts only (no scripts, fonts or images to fetch) and a print stylesheet; its
tables are ``tables.tables(report)``, the same cells the CSV files hold.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

from experiments.reports import svg
from experiments.reports.tables import fmt, tables

FORMATS = ("html", "json", "csv")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "csv": "application/zip",
}
EXTENSIONS = {"html": "html", "json": "json", "csv": "zip"}


def render(report: dict[str, Any], fmt_name: str) -> tuple[bytes, str, str]:
    if fmt_name not in FORMATS:
        raise ValueError(f"format={fmt_name!r} is unknown; use one of {', '.join(FORMATS)}")
    name = f"report-{report['experiment']['key']}.{EXTENSIONS[fmt_name]}"
    if fmt_name == "json":
        body = json.dumps(report, indent=2, allow_nan=False).encode()
    elif fmt_name == "csv":
        body = to_csv_zip(report)
    else:
        body = to_html(report).encode()
    return body, MEDIA_TYPES[fmt_name], name


def csv_text(columns: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def to_csv_zip(report: dict[str, Any]) -> bytes:
    """One CSV per table (empty cells = null), plus meta.csv (experiment, privacy, version)."""
    buffer = io.BytesIO()
    privacy = report["privacy"]
    dp = privacy.get("differential_privacy") or {}
    meta = [
        ["experiment", report["experiment"]["key"]],
        ["generated_at", report["generated_at"]],
        ["schema_version", report["schema_version"]],
        ["k_min", privacy["k_min"]],
        ["dp_epsilon", dp.get("epsilon")],
        ["dp_count_noise_scale", dp.get("count_noise_scale")],
        ["flags", " | ".join(report["flags"])],
    ]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("meta.csv", csv_text(["field", "value"], meta))
        for name, (columns, rows) in tables(report).items():
            archive.writestr(f"{name}.csv", csv_text(columns, rows))
    return buffer.getvalue()


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1a1a1a;
max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #1f4e79;padding-bottom:.2em;
margin-top:1.8em}h3{margin-top:1.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:12px;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eef2f7}
td.t,th.t{text-align:left}.flag{background:#fff3cd;border-left:4px solid #d08b1f;padding:.5em 1em}
.ok{color:#2e6b2e}.bad{color:#a12622;font-weight:600}.muted{color:#666}
.chart{max-width:100%;height:auto;display:block;margin:.5em 0}pre{white-space:pre-wrap;
font-size:11px;background:#f6f6f6;padding:.6em;border:1px solid #ddd}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-before:auto}
table,svg,pre{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="muted">No rows.</p>'
    head = "".join(
        f'<th class="{"t" if i < 1 else ""}">{_e(c)}</th>' for i, c in enumerate(columns)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"t" if isinstance(v, str) else ""}">{_e(fmt(v))}</td>' for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _e(text: Any) -> str:
    from html import escape

    return escape(str(text))


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{''.join(parts)}</section>"


def to_html(report: dict[str, Any]) -> str:
    t = tables(report)
    exp = report["experiment"]
    privacy = report["privacy"]
    dp = privacy.get("differential_privacy")
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Causal report: {_e(exp['key'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Causal report: {_e(exp['name'])}</h1>",
        f"<p class='muted'>experiment <b>{_e(exp['key'])}</b> · status {_e(exp['status'])} · "
        f"generated {_e(report['generated_at'])} · schema v{report['schema_version']}</p>",
    ]
    flags = report["flags"]
    out.append(
        "<div class='flag'><b>Flags:</b><ul>"
        + "".join(f"<li>{_e(f)}</li>" for f in flags)
        + "</ul></div>"
        if flags
        else "<p class='ok'>No data-quality or refutation flags.</p>"
    )
    privacy_text = f"Segments with fewer than {privacy['k_min']} users are suppressed. "
    if dp:
        privacy_text += (
            f"Differential privacy: Laplace noise with epsilon = {fmt(dp['epsilon'])} "
            f"(scale {fmt(dp['count_noise_scale'])} on counts, {fmt(dp['sum_noise_scale'])} on "
            f"sums) was added to the segment counts and sums; {dp['applies_to']}."
        )
    else:
        privacy_text += "No differential-privacy noise was added."
    out.append(f"<p><b>Privacy.</b> {_e(privacy_text)} Unit ids never appear.</p>")
    timeline = exp["timeline"]
    variants = [[v["key"], v["name"], v["weight"], v["incentive"]] for v in exp["variants"]]
    metrics = [[m["key"], m["name"], m["role"], m["kind"]] for m in exp["metrics"]]
    out.append(
        _section(
            "Design and timeline",
            f"<p>{_e(exp.get('hypothesis') or '')}</p>",
            _table(["variant", "name", "weight", "incentive"], variants),
            _table(["metric", "name", "role", "kind"], metrics),
            _table(["design", "value"], [[k, v] for k, v in exp["design"].items()]),
            _table(["event", "at"], [[k, v] for k, v in timeline.items()]),
        )
    )
    out.append(
        _section(
            "Data quality",
            "<h3>Sample ratio</h3>",
            _table(*t["srm"]),
            "<h3>Exposures by day</h3>",
            _table(*t["exposures_by_day"]),
            "<h3>Events outside the analysis windows</h3>",
            _table(*t["events_outside_windows"]),
            "<h3>Pre-period covariate balance (standardized mean differences)</h3>",
            _table(*t["balance"]) if t["balance"][1] else _unavailable(report, "balance"),
        )
    )
    effect_rows = [
        (
            f"{e['metric']} · {e['variant']}",
            e["unadjusted"]["fixed"]["effect"],
            e["unadjusted"]["fixed"]["ci"],
        )
        for e in report["average_effects"]
    ]
    out.append(
        _section(
            "Average effects",
            "<p>Relative lift versus control: fixed-horizon (Welch) and always-valid sequential "
            "intervals, unadjusted and CUPED; the absolute difference in means; Holm-adjusted "
            "p-values over the goal metrics × arms.</p>",
            svg.intervals("Relative lift with 95% fixed-horizon interval", effect_rows),
            _table(*t["average_effects"]),
        )
    )
    out.append(_heterogeneity(report, t))
    out.append(_checks(report, t))
    decision = report["decision"]
    recommendation = decision.get("recommendation") or {}
    out.append(
        _section(
            "Decision",
            f"<p>Status <b>{_e(decision['status'])}</b>; winner <b>{_e(decision['winner'] or '—')}"
            f"</b>. Engine recommendation: {_e(recommendation.get('action', '—'))} — "
            f"{_e(recommendation.get('reason', ''))}</p>",
            "<h3>Strategies fed by this experiment</h3>",
            _table(*t["strategies"]),
        )
    )
    appendix = report["appendix"]
    out.append(
        _section(
            "Appendix",
            "<h3>Statistics SQL</h3>",
            f"<pre>{_e(appendix['sql']['statistics'])}</pre>",
            f"<p class='muted'>{_e(appendix['sql_note'])}</p>",
            "<h3>Software versions</h3>",
            _table(["package", "version"], [[k, v] for k, v in appendix["versions"].items()]),
            "<h3>Build time by phase</h3>",
            _table(
                ["phase", "seconds"],
                [[k, v] for k, v in (appendix.get("timings_seconds") or {}).items()],
            ),
        )
    )
    out.append("</body></html>")
    return "".join(out)


def _unavailable(report: dict[str, Any], section: str) -> str:
    reason = report.get("unavailable", {}).get(section, "not computed")
    return f"<p class='muted'>Not available: {_e(reason)}</p>"


def _heterogeneity(report: dict[str, Any], t: dict[str, Any]) -> str:
    het = report.get("heterogeneity")
    if not het:
        return _section("Heterogeneity", _unavailable(report, "heterogeneity"))
    model = het["model"]
    parts = [
        f"<p>Uplift model: {_e(model['source'])} ({_e(model['architecture'])}); "
        + (f"trained on {_e(model['training_sample'])}; " if model.get("training_sample") else "")
        + f"evaluated on {_e(model['evaluated_on'])}. Outcome: {_e(het['outcome'])}. The "
        "observed segment effects and their intervals use every unit of the segment.</p>",
        "<h3>Distribution of per-user predicted effects</h3>",
        _table(*t["effect_distribution"]),
        "<h3>Effects by segment</h3>",
    ]
    for arm in sorted({s["arm"] for s in het["segments"]}):
        rows = [
            (f"{s['feature']}={s['level']}", s["observed_effect"], s["observed_ci"])
            for s in het["segments"]
            if s["arm"] == arm
        ]
        parts.append(svg.intervals(f"Observed effect by segment, {arm}", rows))
    parts.append(_table(*t["segments"]))
    parts.append("<h3>Qini and uplift curves</h3>")
    for curve_name in ("qini_curve", "uplift_curve"):
        series = [
            (c["arm"], c[curve_name]["x"], c[curve_name]["y"])
            for c in het["curves"]
            if c.get(curve_name)
        ]
        parts.append(
            svg.lines(
                curve_name.replace("_", " "),
                series,
                x_label="users targeted (highest predicted effect first)",
                y_label="incremental conversions",
            )
        )
    parts.append(_table(*t["uplift_scores"]))
    parts.append("<h3>Calibration: predicted vs observed uplift by decile</h3>")
    for arm in sorted({c["arm"] for c in het["calibration"]}):
        rows = [c for c in het["calibration"] if c["arm"] == arm and not c["suppressed"]]
        parts.append(
            svg.lines(
                f"Calibration, {arm}",
                [
                    ("observed", [c["decile"] for c in rows], [c["observed_effect"] for c in rows]),
                    (
                        "predicted",
                        [c["decile"] for c in rows],
                        [c["predicted_effect"] for c in rows],
                    ),
                ],
                diagonal=False,
                x_label="decile of predicted effect (1 = highest)",
                y_label="effect on conversion",
            )
        )
    parts.append(_table(*t["calibration"]))
    return _section("Heterogeneity", *parts)


def _checks(report: dict[str, Any], t: dict[str, Any]) -> str:
    refutations = report.get("refutations")
    cross = report.get("cross_check")
    parts = ["<h3>Refutations (DoWhy)</h3>"]
    if refutations:
        verdict = "passed" if refutations["passed"] else "FAILED"
        css = "ok" if refutations["passed"] else "bad"
        parts.append(
            f"<p class='{css}'>Refutations {verdict}. A test passes when the refuted effect is "
            "within 2 standard errors of what it should be (0 for the placebo).</p>"
        )
        if refutations.get("sample"):
            parts.append(f"<p class='muted'>Ran on {_e(refutations['sample'])}.</p>")
        parts.append(_table(*t["refutations"]))
    else:
        parts.append(_unavailable(report, "refutations"))
    parts.append("<h3>EconML cross-check</h3>")
    if cross and cross.get("sample"):
        parts.append(f"<p class='muted'>Ran on {_e(cross['sample'])}.</p>")
    parts.append(_table(*t["cross_check"]) if cross else _unavailable(report, "cross_check"))
    return _section("Refutations and cross-check", *parts)
