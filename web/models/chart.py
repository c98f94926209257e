"""Qini curves of a model run as inline SVG geometry: one curve per arm and its random baseline.

Pure functions on ``ModelRun.metrics["qini_curves"]`` (``{arm: {"x": [...], "y": [...]}}``, x the
number of test users targeted in decreasing order of predicted effect, y the incremental
conversions). Arms are evaluated on different numbers of users, so x is drawn as the share of the
arm's users targeted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from web.results.chart import COLORS, nice_ticks

WIDTH, HEIGHT = 960, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 16, 44


@dataclass
class Curve:
    arm: str
    color: str
    line: str  # the model's curve, an SVG path
    baseline: str  # random targeting: the straight line to the curve's end
    gain: float  # incremental conversions when everyone is targeted


@dataclass
class QiniChart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    curves: list[Curve]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    zero_y: float


def qini_chart(curves: Mapping[str, Mapping[str, Any]]) -> QiniChart | None:
    """The chart of every arm's Qini curve; None when no arm has two points."""
    rows: dict[str, list[tuple[float, float]]] = {}
    for arm, curve in curves.items():
        xs, ys = list(curve.get("x") or []), list(curve.get("y") or [])
        if len(xs) < 2 or len(xs) != len(ys) or not xs[-1]:
            continue
        rows[arm] = [(float(x) / float(xs[-1]), float(y)) for x, y in zip(xs, ys, strict=True)]
    if not rows:
        return None
    values = [0.0] + [y for points in rows.values() for _, y in points]
    y_ticks = nice_ticks(min(values), max(values), 6)
    y_low, y_high = y_ticks[0], y_ticks[-1]
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def sx(x: float) -> float:
        return round(LEFT + x * (right - LEFT), 1)

    def sy(y: float) -> float:
        return round(bottom - (y - y_low) / (y_high - y_low) * (bottom - TOP), 1)

    out = []
    for i, (arm, points) in enumerate(rows.items()):
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{sx(x)},{sy(y)}" for j, (x, y) in enumerate(points)
        )
        first, last = points[0], points[-1]
        out.append(
            Curve(
                arm=arm,
                color=COLORS[i % len(COLORS)],
                line=path,
                baseline=f"M{sx(first[0])},{sy(first[1])} L{sx(last[0])},{sy(last[1])}",
                gain=last[1],
            )
        )
    return QiniChart(
        width=WIDTH,
        height=HEIGHT,
        plot=(LEFT, TOP, right, bottom),
        curves=out,
        x_ticks=[(sx(t / 5), f"{t * 20}%") for t in range(6)],
        y_ticks=[(sy(t), f"{t:,.4g}") for t in y_ticks],
        zero_y=sy(0.0),
    )
