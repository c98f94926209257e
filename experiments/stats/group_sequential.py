"""Group-sequential boundaries for a planned horizon: Lan–DeMets alpha spending.

Layer: pure domain core (numpy/scipy). Boundaries come from the recursive numerical
integration of Armitage, McPherson & Rowe (1969, JRSS A 132:235-244) in the form of Jennison &
Turnbull (2000, "Group Sequential Methods with Applications to Clinical Trials", chapter 19):
the sub-density of Z_k on the continuation region is propagated look by look on a grid with
Simpson's rule, and at each look the boundary is solved so that the probability of first
crossing there equals the alpha spent since the previous look.

Under H0 the score S_k = Z_k sqrt(I_k) is Brownian motion in the information I, so with
information fractions t_k the increments S_k - S_{k-1} are N(0, t_k - t_{k-1}) and only the
fractions matter (Jennison & Turnbull 2000, section 3.1, the canonical joint distribution).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize
from scipy import stats as sps

from experiments.stats.moments import lift_moments
from experiments.stats.statistics import Statistic

Spending = Literal["obrien_fleming", "pocock"]


def obrien_fleming_spending(t: np.ndarray | float, alpha: float) -> np.ndarray:
    """O'Brien–Fleming-type spending alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)).

    Lan & DeMets (1983, Biometrika 70:659-663), spending function alpha_1*(t); Jennison &
    Turnbull (2000), chapter 7.
    """
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):
        return 2 * sps.norm.sf(sps.norm.isf(alpha / 2) / np.sqrt(t))


def pocock_spending(t: np.ndarray | float, alpha: float) -> np.ndarray:
    """Pocock-type spending alpha(t) = alpha log(1 + (e - 1) t).

    Lan & DeMets (1983), spending function alpha_2*(t); Jennison & Turnbull (2000), chapter 7.
    """
    return alpha * np.log1p((np.e - 1) * np.asarray(t, dtype=float))


SPENDING_FUNCTIONS: dict[str, Callable[[np.ndarray | float, float], np.ndarray]] = {
    "obrien_fleming": obrien_fleming_spending,
    "pocock": pocock_spending,
}


@dataclass(frozen=True)
class GroupSequentialDesign:
    """Efficacy boundaries on the z scale, one per look.

    ``sides=1``: reject when Z_k >= boundaries[k]; ``sides=2``: when |Z_k| >= boundaries[k]
    (symmetric, alpha split equally between the two tails).
    """

    information_fractions: tuple[float, ...]
    boundaries: tuple[float, ...]
    cumulative_alpha: tuple[float, ...]
    alpha: float
    spending: str
    sides: int

    @property
    def nominal_p_values(self) -> tuple[float, ...]:
        """Per-look nominal p-value thresholds (two-sided when ``sides=2``)."""
        return tuple(float(self.sides * sps.norm.sf(b)) for b in self.boundaries)


def _grid(r: int, lower: float, upper: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and Simpson weights on (lower, upper) after Jennison & Turnbull (2000), 19.2.

    The 6r - 1 base points are dense near 0 and spread logarithmically into the tails
    (out to +-(3 + 4 log r)); points outside the interval are replaced by its ends, and the
    midpoint of each pair is added so that Simpson's rule applies on every sub-interval.
    """
    i = np.arange(1, 6 * r)
    x = np.where(
        i < r,
        -3 - 4 * np.log(r / np.maximum(i, 1)),
        np.where(i <= 5 * r, -3 + 3 * (i - r) / (2 * r), 3 + 4 * np.log(r / (6 * r - i))),
    )
    x = np.unique(np.clip(x, lower, upper))
    if len(x) < 2:
        return x, np.zeros_like(x)
    h = np.diff(x)
    nodes = np.empty(2 * len(x) - 1)
    nodes[0::2] = x
    nodes[1::2] = x[:-1] + h / 2
    weights = np.zeros_like(nodes)
    weights[0:-1:2] += h / 6
    weights[2::2] += h / 6
    weights[1::2] = 4 * h / 6
    return nodes, weights


def _crossing(
    nodes: np.ndarray, dens: np.ndarray, t_prev: float, t_k: float, b: float, sides: int
) -> float:
    """P(first crossing at look k) = integral g_{k-1}(z) P(Z_k beyond b | z) dz
    (Jennison & Turnbull 2000, section 19.2, applied to the exit region)."""
    dt = t_k - t_prev
    mean = nodes * np.sqrt(t_prev)
    upper = sps.norm.sf((b * np.sqrt(t_k) - mean) / np.sqrt(dt))
    if sides == 2:
        upper = upper + sps.norm.cdf((-b * np.sqrt(t_k) - mean) / np.sqrt(dt))
    return float(np.sum(dens * upper))


def _excess(
    b: float,
    nodes: np.ndarray,
    dens: np.ndarray,
    t_prev: float,
    t_k: float,
    sides: int,
    target: float,
) -> float:
    return _crossing(nodes, dens, t_prev, t_k, b, sides) - target


def lan_demets_boundaries(
    information_fractions: Sequence[float],
    alpha: float = 0.025,
    spending: Spending = "obrien_fleming",
    sides: int = 1,
    grid_r: int = 32,
) -> GroupSequentialDesign:
    """Boundaries for looks at the given information fractions (increasing, last one <= 1).

    ``alpha`` is the total type-I error: one-sided when ``sides=1``; two-sided when
    ``sides=2``, each tail then spending the function evaluated at alpha / 2 (the convention of
    gsDesign's symmetric ``test.type=2`` and of ldbounds, so two-sided 0.05 has the same
    boundaries as one-sided 0.025 up to the negligible chance of crossing both tails).
    Only looks made so far need to be given: the spending approach lets later looks be placed
    freely (Lan & DeMets 1983).
    """
    t = np.asarray(information_fractions, dtype=float)
    if t.ndim != 1 or len(t) == 0 or np.any(t <= 0) or np.any(np.diff(t) <= 0) or t[-1] > 1:
        raise ValueError(
            "information_fractions must be increasing, in (0, 1]; e.g. [0.2, 0.4, 0.6, 0.8, 1]"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2, got {sides}")
    if spending not in SPENDING_FUNCTIONS:
        raise ValueError(f"spending must be one of {sorted(SPENDING_FUNCTIONS)}, got {spending!r}")
    spent = sides * SPENDING_FUNCTIONS[spending](t, alpha / sides)
    boundaries: list[float] = []
    # Look 1: Z_1 ~ N(0, 1) exactly.
    b1 = float(sps.norm.isf(spent[0] / sides)) if spent[0] > 0 else float("inf")
    boundaries.append(b1)
    nodes, weights = _grid(grid_r, -b1 if sides == 2 else -np.inf, b1)
    dens = weights * sps.norm.pdf(nodes)
    for k in range(1, len(t)):
        target = spent[k] - spent[k - 1]
        t_prev, t_k = t[k - 1], t[k]
        if target <= 0:
            b = float("inf")
        else:
            args = (nodes, dens, t_prev, t_k, sides, target)
            b = float(optimize.brentq(_excess, -10.0, 40.0, args=args, xtol=1e-12))
        boundaries.append(b)
        # Propagate the sub-density of Z_k on the continuation region (J&T 2000, section 19.2):
        # g_k(z) = int g_{k-1}(u) sqrt(t_k / dt) phi((z sqrt(t_k) - u sqrt(t_prev)) / sqrt(dt)) du.
        new_nodes, new_weights = _grid(grid_r, -b if sides == 2 else -np.inf, b)
        dt = t_k - t_prev
        kernel = sps.norm.pdf(
            (new_nodes[:, None] * np.sqrt(t_k) - nodes[None, :] * np.sqrt(t_prev)) / np.sqrt(dt)
        ) * np.sqrt(t_k / dt)
        dens = new_weights * (kernel @ dens)
        nodes = new_nodes
    return GroupSequentialDesign(
        information_fractions=tuple(float(v) for v in t),
        boundaries=tuple(boundaries),
        cumulative_alpha=tuple(float(v) for v in spent),
        alpha=alpha,
        spending=spending,
        sides=sides,
    )


@dataclass(frozen=True)
class GroupSequentialResult:
    """One look of a group-sequential test."""

    effect: float
    se: float
    z: float
    boundary: float
    reject: bool
    look: int
    error: str | None = None


def group_sequential_test(
    control: Statistic,
    treatment: Statistic,
    design: GroupSequentialDesign,
    look: int,
    relative: bool = False,
) -> GroupSequentialResult:
    """Compare the z statistic of look ``look`` (0-based) with the design's boundary."""
    if not 0 <= look < len(design.boundaries):
        raise ValueError(f"look must be in [0, {len(design.boundaries) - 1}], got {look}")
    m = lift_moments(control, treatment, relative=relative)
    boundary = design.boundaries[look]
    if m.error:
        return GroupSequentialResult(0.0, 0.0, 0.0, boundary, False, look, error=m.error)
    z = m.effect / m.se
    reject = bool(abs(z) >= boundary) if design.sides == 2 else bool(z >= boundary)
    return GroupSequentialResult(m.effect, m.se, float(z), boundary, reject, look)
