"""Inline SVG charts for the HTML report (reports layer): no scripts, no external assets.

Two kinds: ``intervals`` (a point with its interval per row and a zero line, for effects) and
``lines`` (one or more series with a diagonal reference, for Qini/uplift curves and calibration).
Text is escaped; every chart has a title for screen readers and prints in black and white.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, ROW, PAD_LEFT, PAD_RIGHT = 640, 22, 190, 20
COLORS = ("#1f4e79", "#c0504d", "#4f8a3c", "#7f6084", "#d08b1f")


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def intervals(
    title: str, rows: Sequence[tuple[str, float | None, Sequence[float | None] | None]]
) -> str:
    """Rows of (label, estimate, [low, high]); rows without numbers are listed as suppressed."""
    values = [v for _, e, ci in rows for v in ([e] + list(ci or [])) if v is not None]
    if not values:
        return ""
    lo, hi = min(values + [0.0]), max(values + [0.0])
    margin = (hi - lo) * 0.05 or 0.01
    x = _scale(lo - margin, hi + margin, PAD_LEFT, WIDTH - PAD_RIGHT)
    height = ROW * len(rows) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" class="chart"><title>{escape(title)}</title>',
        f'<line x1="{x(0):.1f}" y1="10" x2="{x(0):.1f}" y2="{height - 25}" stroke="#888" '
        'stroke-dasharray="3,3"/>',
    ]
    for i, (label, estimate, ci) in enumerate(rows):
        y = 20 + i * ROW
        parts.append(
            f'<text x="{PAD_LEFT - 8}" y="{y + 4}" text-anchor="end" font-size="11">'
            f"{escape(label)}</text>"
        )
        if estimate is None:
            parts.append(
                f'<text x="{PAD_LEFT + 4}" y="{y + 4}" font-size="11" fill="#777">suppressed</text>'
            )
            continue
        if ci and ci[0] is not None and ci[1] is not None:
            parts.append(
                f'<line x1="{x(ci[0]):.1f}" y1="{y}" x2="{x(ci[1]):.1f}" y2="{y}" '
                'stroke="#1f4e79" stroke-width="2"/>'
            )
        parts.append(f'<circle cx="{x(estimate):.1f}" cy="{y}" r="3.5" fill="#c0504d"/>')
    for v in (lo, 0.0, hi):
        parts.append(
            f'<text x="{x(v):.1f}" y="{height - 8}" text-anchor="middle" font-size="10">'
            f"{v:.3g}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def lines(
    title: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    diagonal: bool = True,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """Line chart of (name, xs, ys) series; ``diagonal`` draws the random-targeting line."""
    xs = [v for _, x, _ in series for v in x]
    ys = [v for _, _, y in series for v in y]
    if not xs:
        return ""
    height = 260
    x = _scale(min(xs), max(xs), 50, WIDTH - PAD_RIGHT)
    y = _scale(min(ys + [0.0]), max(ys + [0.0]), height - 40, 15)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" class="chart"><title>{escape(title)}</title>',
        f'<line x1="50" y1="{y(0):.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{y(0):.1f}" stroke="#bbb"/>',
    ]
    for k, (name, sx, sy) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(sx, sy, strict=True))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        if diagonal and len(sx):
            parts.append(
                f'<line x1="{x(sx[0]):.1f}" y1="{y(sy[0]):.1f}" x2="{x(sx[-1]):.1f}" '
                f'y2="{y(sy[-1]):.1f}" stroke="{color}" stroke-dasharray="4,3"/>'
            )
        parts.append(
            f'<text x="{60}" y="{20 + 14 * k}" font-size="11" fill="{color}">{escape(name)}</text>'
        )
    parts.append(
        f'<text x="{WIDTH // 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{height // 2}" font-size="11" transform="rotate(-90 12 {height // 2})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
