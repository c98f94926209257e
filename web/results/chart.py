"""The lift-over-time chart as inline SVG geometry: one line per treatment, its confidence band.

Pure functions on the results history (no Flask): the template draws what these return, so the
chart needs no JavaScript and no external library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 40, 16, 40
COLORS = ("#2b6cb0", "#dd6b20", "#2f855a", "#805ad5", "#c53030", "#319795")


@dataclass
class Series:
    variant: str
    color: str
    line: str  # an SVG path
    band: str  # an SVG polygon's points ("" when no interval)
    points: list[tuple[float, float]] = field(default_factory=list)
    last_lift: float | None = None


@dataclass
class Chart:
    metric: str
    name: str
    width: int
    height: int
    series: list[Series]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    zero_y: float
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    steps = round((math.ceil(high / step) * step - start) / step)
    return [round(start + i * step, 12) for i in range(steps + 1)]


def _metric_points(snapshot: dict[str, Any], metric: str) -> dict[str, tuple[float, list | None]]:
    for item in snapshot.get("metrics", []):
        if item.get("metric") == metric:
            return {
                v["variant"]: (v["lift"], v.get("ci"))
                for v in item.get("variants", [])
                if v.get("lift") is not None
            }
    return {}


def _x_label(value: float) -> str:
    return f"{value:,.0f}"


def _pct(value: float, decimals: int = 1) -> str:
    return f"{value * 100:+.{decimals}f}%" if value else "0%"


def lift_chart(history: Sequence[dict[str, Any]], metric: str, name: str = "") -> Chart | None:
    """The chart of ``metric``'s relative lift and interval per treatment over the refreshes."""
    rows: dict[str, list[tuple[float, float, list | None]]] = {}
    for index, snapshot in enumerate(history):
        x = float(snapshot.get("n_units") or index)
        for variant, (lift, ci) in _metric_points(snapshot, metric).items():
            rows.setdefault(variant, []).append((x, float(lift), ci))
    if not rows:
        return None
    xs = [x for points in rows.values() for x, _, _ in points]
    # the axis spans every lift and the latest interval: the first looks' intervals are very wide
    # and would flatten the rest, so the band is clipped to the plot (see the template's clipPath)
    ys = [0.0] + [y for points in rows.values() for _, y, _ in points]
    for points in rows.values():
        last_ci = max(points, key=lambda p: p[0])[2]
        ys += [b for b in (last_ci or [])[:2] if b is not None]
    y_ticks = nice_ticks(min(ys), max(ys))
    decimals = 0 if (y_ticks[1] - y_ticks[0]) * 100 >= 1 else 1
    y_low, y_high = y_ticks[0], y_ticks[-1]
    x_ticks = nice_ticks(0.0, max(xs) or 1.0)
    x_low, x_high = 0.0, x_ticks[-1]
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def sx(x: float) -> float:
        return round(LEFT + (x - x_low) / (x_high - x_low) * (right - LEFT), 1)

    def sy(y: float) -> float:
        return round(bottom - (y - y_low) / (y_high - y_low) * (bottom - TOP), 1)

    series = []
    for i, (variant, points) in enumerate(rows.items()):
        points.sort(key=lambda p: p[0])
        line = " ".join(
            f"{'M' if j == 0 else 'L'}{sx(x)},{sy(y)}" for j, (x, y, _) in enumerate(points)
        )
        banded = [(x, ci) for x, _, ci in points if ci and None not in ci[:2]]
        upper = [f"{sx(x)},{sy(ci[1])}" for x, ci in banded]
        lower = [f"{sx(x)},{sy(ci[0])}" for x, ci in reversed(banded)]
        series.append(
            Series(
                variant=variant,
                color=COLORS[i % len(COLORS)],
                line=line,
                band=" ".join(upper + lower),
                points=[(sx(x), sy(y)) for x, y, _ in points],
                last_lift=points[-1][1],
            )
        )
    return Chart(
        metric=metric,
        name=name or metric,
        width=WIDTH,
        height=HEIGHT,
        series=series,
        x_ticks=[(sx(t), _x_label(t)) for t in x_ticks],
        y_ticks=[(sy(t), _pct(t, decimals)) for t in y_ticks],
        zero_y=sy(0.0),
        plot=(LEFT, TOP, right, bottom),
    )
