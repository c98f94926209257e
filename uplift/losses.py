"""Outcome parameterizations and losses of the uplift networks (uplift layer, torch/numpy).

An ``OutcomeSpec`` says how the raw head outputs map to expected outcomes:

* ``binary``: one logit per arm; expectation ``sigmoid(logit)``; loss BCE.
* ``continuous``: one value on the standardized scale; expectation ``loc + scale * value``; loss MSE.
* ``zero_inflated`` (revenue = conversion × order value): a conversion logit and an order value
  (standardized over converters); expectation ``sigmoid(logit) * value``; loss BCE on conversion
  plus MSE on the order value of converters only. With a 2-D ``y`` (conversion, revenue) the two
  columns are trained jointly and both targets ``conversion`` and ``revenue`` are reported.
* ``funnel`` (a 2-D 0/1 ``y``: a first stage, e.g. a visit, and the outcome that can only follow
  it, e.g. a conversion): a first-stage logit and a logit of the outcome given the first stage;
  expectations ``sigmoid(a)`` and ``sigmoid(a) * sigmoid(b)``; loss BCE on the first stage plus
  BCE on the outcome of the rows that reached the first stage. Targets ``visit`` and
  ``conversion``. The rare outcome borrows the first stage's much larger signal, and the
  difference penalty on the second output (``value_difference``) pulls the arms' conditional
  rates together, so an incentive's effect is carried mostly by the first stage.

Also: DragonNet's targeted regularization (Shi et al. 2019, eq. 3) generalised to several arms,
and the representation-balancing penalties of CFR (Shalit et al. 2017): linear MMD and the
entropic (Sinkhorn) Wasserstein distance between each incentive's φ and the control's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

KINDS = ("auto", "binary", "continuous", "zero_inflated", "funnel")


@dataclass
class OutcomeSpec:
    kind: str
    targets: list[str]
    loc: float = 0.0
    scale: float = 1.0
    n_raw: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, y: np.ndarray, kind: str) -> OutcomeSpec:
        """``y``: float array (n, 1) or (n, 2) = (conversion, revenue)."""
        if kind not in KINDS:
            raise ValueError(f"outcome={kind!r} is unknown; use one of {KINDS}")
        if y.shape[1] == 2:
            funnel = cls._funnel(y, kind)
            if funnel is not None:
                return funnel
            if not np.isin(y[:, 0], (0.0, 1.0)).all():
                raise ValueError("a 2-D y must be (conversion 0/1, revenue); column 0 is not 0/1")
            if kind not in ("auto", "zero_inflated"):
                raise ValueError(
                    "a 2-D y (conversion, revenue) is trained as outcome='zero_inflated'"
                )
            return cls._zero_inflated(y[:, 0] > 0, y[:, 1], ["conversion", "revenue"])
        if kind == "funnel":
            raise ValueError("outcome='funnel' needs a 2-D y: (visit 0/1, conversion 0/1)")
        col = y[:, 0]
        binary = bool(np.isin(col, (0.0, 1.0)).all())
        if kind == "auto":
            kind = "binary" if binary else "continuous"
        if kind == "binary":
            if not binary:
                raise ValueError("outcome='binary' needs y in {0, 1}")
            return cls("binary", ["y"])
        if kind == "continuous":
            sd = float(col.std())
            return cls("continuous", ["y"], loc=float(col.mean()), scale=sd if sd > 0 else 1.0)
        if (col < 0).any():
            raise ValueError("outcome='zero_inflated' needs y >= 0 (revenue)")
        return cls._zero_inflated(col > 0, col, ["y"])

    @classmethod
    def _funnel(cls, y: np.ndarray, kind: str) -> OutcomeSpec | None:
        """The funnel spec when ``kind`` is "funnel" (``y`` checked: 0/1 columns, the second
        only where the first is 1); None otherwise: "auto" never picks a funnel, since a 2-D
        (conversion, revenue) whose revenue happens to be 0/1 would look like one."""
        if kind != "funnel":
            return None
        binary = np.isin(y, (0.0, 1.0)).all(axis=0)
        nested = bool(binary.all() and (y[:, 1] <= y[:, 0]).all())
        if not nested:
            column = "column 0 (visit)" if not binary[0] else "column 1 (conversion)"
            problem = "is not 0/1" if not binary.all() else "is 1 on rows where column 0 is 0"
            raise ValueError(
                f"outcome='funnel' needs y = (visit 0/1, conversion 0/1) with a conversion only "
                f"after a visit; {column} {problem}"
            )
        return cls("funnel", ["visit", "conversion"], n_raw=2)

    @classmethod
    def _zero_inflated(
        cls, positive: np.ndarray, value: np.ndarray, targets: list[str]
    ) -> OutcomeSpec:
        pos = value[positive]
        loc = float(pos.mean()) if pos.size else 0.0
        sd = float(pos.std()) if pos.size > 1 else 1.0
        return cls("zero_inflated", targets, loc=loc, scale=sd if sd > 0 else 1.0, n_raw=2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ maps
    def expected(self, raw: torch.Tensor) -> torch.Tensor:
        """raw (..., n_raw) → expected targets (..., len(targets)) on the outcome scale."""
        if self.kind == "binary":
            return torch.sigmoid(raw)
        if self.kind == "continuous":
            return self.loc + self.scale * raw
        p = torch.sigmoid(raw[..., :1])
        if self.kind == "funnel":
            return torch.cat([p, p * torch.sigmoid(raw[..., 1:2])], dim=-1)
        revenue = p * (self.loc + self.scale * raw[..., 1:2])
        return torch.cat([p, revenue], dim=-1) if len(self.targets) == 2 else revenue

    def targets_array(self, y: np.ndarray) -> np.ndarray:
        """The observed targets matching ``expected`` (for validation criteria)."""
        return y if len(self.targets) == y.shape[1] else y[:, -1:]

    def factual_loss(
        self, raw: torch.Tensor, y: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """raw: (n, n_raw) at the observed arm; y: (n, 1 or 2); weight: (n,)."""
        if self.kind == "binary":
            per_row = F.binary_cross_entropy_with_logits(raw[:, 0], y[:, 0], reduction="none")
        elif self.kind == "continuous":
            per_row = (raw[:, 0] - (y[:, 0] - self.loc) / self.scale) ** 2
        elif self.kind == "funnel":
            first = y[:, 0]
            per_row = F.binary_cross_entropy_with_logits(raw[:, 0], first, reduction="none")
            second = F.binary_cross_entropy_with_logits(raw[:, 1], y[:, 1], reduction="none")
            per_row = per_row + first * second
        else:
            positive = (y[:, 0] > 0).to(raw.dtype)
            value = y[:, -1]
            per_row = F.binary_cross_entropy_with_logits(raw[:, 0], positive, reduction="none")
            per_row = per_row + positive * (raw[:, 1] - (value - self.loc) / self.scale) ** 2
        return (per_row * weight).sum() / weight.sum()

    def targeted_loss(
        self,
        raw: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor,
        clever: torch.Tensor,
        epsilon: torch.Tensor,
    ) -> torch.Tensor:
        """Targeted regularization on the first raw output (the conversion logit for zero-inflated).

        ``clever``: (n, n_arms-1), H_k = 1[t=k]/g_k − 1[t=0]/g_0; ``epsilon``: (n_arms-1, n_out).
        """
        shifted = raw[:, 0] + clever @ epsilon[:, 0]
        if self.kind == "continuous":
            per_row = (shifted - (y[:, 0] - self.loc) / self.scale) ** 2
        else:
            target = (y[:, 0] > 0).to(raw.dtype)
            per_row = F.binary_cross_entropy_with_logits(shifted, target, reduction="none")
        return (per_row * weight).sum() / weight.sum()


def clever_covariate(propensity: torch.Tensor, arm: torch.Tensor) -> torch.Tensor:
    """H_k(t, x) = 1[t=k]/g_k(x) − 1[t=0]/g_0(x) for every incentive k ≥ 1 (DragonNet, eq. 3)."""
    g = (propensity + 0.01) / (1.0 + 0.01 * propensity.shape[1])  # DragonNet's bounding of g
    onehot = F.one_hot(arm, propensity.shape[1]).to(g.dtype)
    return onehot[:, 1:] / g[:, 1:] - (onehot[:, :1] / g[:, :1])


def balance_penalty(phi: torch.Tensor, arm: torch.Tensor, n_arms: int, kind: str) -> torch.Tensor:
    """Sum over incentives of the IPM between φ|arm=k and φ|control (CFR, Shalit et al. 2017)."""
    total = phi.new_zeros(())
    control = phi[arm == 0]
    if control.shape[0] < 2:
        return total
    for k in range(1, n_arms):
        treated = phi[arm == k]
        if treated.shape[0] < 2:
            continue
        if kind == "mmd":
            total = total + ((treated.mean(0) - control.mean(0)) ** 2).sum()
        elif kind == "wasserstein":
            total = total + sinkhorn_distance(treated, control)
        else:
            raise ValueError(f"balance={kind!r} is unknown; use None, 'mmd' or 'wasserstein'")
    return total


def sinkhorn_distance(
    a: torch.Tensor, b: torch.Tensor, lam: float = 10.0, iterations: int = 10
) -> torch.Tensor:
    """Entropic Wasserstein-1 between two point clouds (Cuturi 2013; CFR's ``wasserstein``)."""
    cost = torch.cdist(a.float(), b.float())
    scale = cost.detach().mean().clamp_min(1e-8)
    kernel = torch.exp(-lam * cost / scale)
    u = torch.full((a.shape[0],), 1.0 / a.shape[0], device=a.device)
    v = torch.full((b.shape[0],), 1.0 / b.shape[0], device=a.device)
    r, c = u.clone(), v.clone()
    for _ in range(iterations):
        r = u / (kernel @ c).clamp_min(1e-30)
        c = v / (kernel.T @ r).clamp_min(1e-30)
    plan = r[:, None] * kernel * c[None, :]
    return (plan.detach() * cost).sum()
