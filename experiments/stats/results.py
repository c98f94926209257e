"""Result dataclasses returned by the tests of ``experiments.stats``.

Layer: pure domain core. A degenerate input (no units in an arm, zero variance, a zero baseline
for a relative lift) never raises: the result carries ``error`` (a message for people) and the
uninformative numbers gbstats returns in that case (effect 0, interval [0, 0], p-value 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TestResult:
    """A frequentist comparison of treatment with control.

    ``effect`` is treatment minus control (absolute) or that difference divided by the control
    mean (relative); ``se`` is its standard error; [``ci_low``, ``ci_high``] the confidence
    interval (for a sequential test: the confidence sequence at this look).
    """

    __test__ = False  # not a pytest test class

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    error: str | None = None
    relative: bool = False
    method: str = "welch"
    dof: float | None = None
    alternative: str = "two-sided"

    @property
    def expected(self) -> float:
        """gbstats' name for ``effect``."""
        return self.effect

    @property
    def ci(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    @property
    def error_message(self) -> str | None:
        """gbstats' name for ``error``."""
        return self.error

    @property
    def ok(self) -> bool:
        return self.error is None

    def significant(self, alpha: float = 0.05) -> bool:
        return self.error is None and self.p_value < alpha


@dataclass(frozen=True)
class BayesianResult:
    """Normal posterior of the lift; ``risk`` is (loss if control is kept, loss if treatment is
    shipped), each the expected shortfall E[max(0, -lift)] of the chosen arm."""

    effect: float
    ci_low: float
    ci_high: float
    se: float
    chance_to_win: float
    risk: tuple[float, float]
    error: str | None = None
    relative: bool = False
    method: str = "bayesian"

    @property
    def expected(self) -> float:
        return self.effect

    @property
    def ci(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    @property
    def expected_loss(self) -> float:
        """Expected loss of shipping the treatment (``risk[1]``)."""
        return self.risk[1]

    @property
    def error_message(self) -> str | None:
        return self.error

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class SrmResult:
    """Chi-square goodness of fit of the observed arm sizes against the configured weights."""

    chi2: float
    p_value: float
    dof: int
    expected: tuple[float, ...]
    alert: bool
    error: str | None = None


def default_test_result(
    error: str, *, relative: bool, method: str, alternative: str = "two-sided"
) -> TestResult:
    """The uninformative result gbstats returns for degenerate data (never significant)."""
    return TestResult(
        effect=0.0,
        ci_low=0.0,
        ci_high=0.0,
        p_value=1.0,
        se=0.0,
        error=error,
        relative=relative,
        method=method,
        alternative=alternative,
    )
