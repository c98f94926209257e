"""The profit frontier as inline SVG geometry: expected incremental value against budget.

Pure functions on ``Strategy.config["frontier"]`` (a list of ``{budget, value, spend}`` computed by
the strategy job): the template draws what these return, with no JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web.results.chart import nice_ticks

WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 16, 44


@dataclass
class FrontierPoint:
    x: float
    y: float
    budget: float
    value: float
    spend: float


@dataclass
class FrontierChart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    line: str  # an SVG path
    points: list[FrontierPoint]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    zero_y: float
    budget: float
    budget_x: float
    budget_value: float | None  # the frontier's value at the chosen budget (interpolated)
    budget_y: float | None


def money(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")


def value_at(points: Sequence[tuple[float, float]], budget: float) -> float | None:
    """Linear interpolation of the frontier at ``budget`` (None outside its range)."""
    for (b0, v0), (b1, v1) in zip(points, points[1:], strict=False):
        if b0 <= budget <= b1:
            return v0 if b1 == b0 else v0 + (v1 - v0) * (budget - b0) / (b1 - b0)
    if points and budget == points[-1][0]:
        return points[-1][1]
    return None


def frontier_chart(frontier: Sequence[dict[str, Any]], budget: float) -> FrontierChart | None:
    """The chart of ``frontier`` with the chosen ``budget`` marked; None without two points."""
    rows = sorted(
        (float(p["budget"]), float(p["value"]), float(p.get("spend", 0.0)))
        for p in frontier
        if p.get("budget") is not None and p.get("value") is not None
    )
    if len(rows) < 2:
        return None
    x_ticks = nice_ticks(0.0, max(max(r[0] for r in rows), budget) or 1.0, 6)
    y_ticks = nice_ticks(min(0.0, *(r[1] for r in rows)), max(0.0, *(r[1] for r in rows)), 5)
    x_low, x_high, y_low, y_high = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def sx(x: float) -> float:
        return round(LEFT + (x - x_low) / (x_high - x_low) * (right - LEFT), 1)

    def sy(y: float) -> float:
        return round(bottom - (y - y_low) / (y_high - y_low) * (bottom - TOP), 1)

    points = [FrontierPoint(sx(b), sy(v), b, v, s) for b, v, s in rows]
    at_budget = value_at([(b, v) for b, v, _ in rows], budget)
    return FrontierChart(
        width=WIDTH,
        height=HEIGHT,
        plot=(LEFT, TOP, right, bottom),
        line=" ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.y}" for i, p in enumerate(points)),
        points=points,
        x_ticks=[(sx(t), money(t)) for t in x_ticks],
        y_ticks=[(sy(t), money(t)) for t in y_ticks],
        zero_y=sy(0.0),
        budget=budget,
        budget_x=sx(budget),
        budget_value=at_budget,
        budget_y=sy(at_budget) if at_budget is not None else None,
    )
