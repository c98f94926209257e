"""TARNet (Shalit, Johansson & Sontag 2017): shared representation, one outcome head per arm.

With ``balance`` set in the trainer this is CFRNet (the same network, an IPM penalty on φ).
"""

from __future__ import annotations

import torch
from torch import nn

from uplift.nets.blocks import ArmHeads, Representation
from uplift.nets.registry import register
from uplift.nets.sequence import build_sequence_encoder


@register("tarnet")
class TARNet(nn.Module):
    has_propensity = False

    def __init__(
        self,
        *,
        n_numeric: int,
        cardinalities: list[int],
        n_arms: int,
        n_outputs: int,
        representation: tuple[int, ...] = (200, 200, 200),
        head: tuple[int, ...] = (100, 100),
        dropout: float = 0.0,
        sequence_encoder: str | None = None,
        vocab_size: int = 0,
        max_len: int = 0,
    ) -> None:
        super().__init__()
        sequence = build_sequence_encoder(sequence_encoder, vocab_size, max_len)
        self.representation = Representation(
            n_numeric, cardinalities, tuple(representation), dropout, sequence
        )
        self.outcomes = ArmHeads(self.representation.n_out, n_arms, tuple(head), n_outputs, dropout)

    def forward(
        self, numeric: torch.Tensor, codes: torch.Tensor, events: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        phi = self.representation(numeric, codes, events)
        return {"phi": phi, "outcomes": self.outcomes(phi)}
