"""DragonNet (Shi, Blei & Veitch 2019), multi-arm: TARNet plus a softmax propensity head on φ
and one targeted-regularization ε per incentive (arm k versus control) and outcome output.
"""

from __future__ import annotations

import torch
from torch import nn

from uplift.nets.registry import register
from uplift.nets.tarnet import TARNet


@register("dragonnet")
class DragonNet(TARNet):
    has_propensity = True

    def __init__(self, *, n_arms: int, n_outputs: int, **kwargs: object) -> None:
        super().__init__(n_arms=n_arms, n_outputs=n_outputs, **kwargs)  # type: ignore[arg-type]
        self.propensity = nn.Linear(self.representation.n_out, n_arms)
        self.epsilon = nn.Parameter(torch.zeros(n_arms - 1, n_outputs))

    def forward(
        self, numeric: torch.Tensor, codes: torch.Tensor, events: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        out = super().forward(numeric, codes, events)
        out["propensity_logits"] = self.propensity(out["phi"])
        return out
