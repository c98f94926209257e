"""Small building blocks of the uplift networks (uplift layer, torch).

Each block is a tiny ``nn.Module`` with a linear ``forward``; none of them trains itself (the
trainer in ``uplift.trainer`` owns the loop).
"""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Linear → ELU → dropout, repeated; ``sizes`` are the hidden widths."""

    def __init__(self, n_in: int, sizes: tuple[int, ...], dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in sizes:
            layers += [nn.Linear(n_in, width), nn.ELU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            n_in = width
        self.layers = nn.Sequential(*layers)
        self.n_out = n_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def embedding_dim(cardinality: int) -> int:
    """fast.ai's rule of thumb for an embedding width, capped at 16."""
    return int(min(16, round(1.6 * cardinality**0.56)))


class CategoricalEmbeddings(nn.Module):
    """One embedding table per categorical column; row 0 is the 'unknown' level."""

    def __init__(self, cardinalities: list[int]) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(c, embedding_dim(c)) for c in cardinalities)
        self.n_out = sum(t.embedding_dim for t in self.tables)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if not self.tables:
            return codes.new_zeros((codes.shape[0], 0), dtype=torch.float32)
        return torch.cat([table(codes[:, j]) for j, table in enumerate(self.tables)], dim=1)


class ArmHeads(nn.Module):
    """One outcome MLP per arm (TARNet); output shape (n, n_arms, n_outputs)."""

    def __init__(
        self, n_in: int, n_arms: int, sizes: tuple[int, ...], n_outputs: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(
                MLP(n_in, sizes, dropout), nn.Linear(sizes[-1] if sizes else n_in, n_outputs)
            )
            for _ in range(n_arms)
        )

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(phi) for head in self.heads], dim=1)


class Representation(nn.Module):
    """Shared representation: numeric features ⊕ embeddings (⊕ sequence code) → MLP → φ."""

    def __init__(
        self,
        n_numeric: int,
        cardinalities: list[int],
        sizes: tuple[int, ...],
        dropout: float = 0.0,
        sequence: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.embeddings = CategoricalEmbeddings(cardinalities)
        self.sequence = sequence
        n_seq = getattr(sequence, "n_out", 0) if sequence is not None else 0
        self.mlp = MLP(n_numeric + self.embeddings.n_out + n_seq, sizes, dropout)
        self.n_out = self.mlp.n_out

    def forward(
        self, numeric: torch.Tensor, codes: torch.Tensor, events: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = [numeric, self.embeddings(codes)]
        if self.sequence is not None:
            if events is None:
                raise ValueError("this model encodes event sequences; pass sequences=")
            parts.append(self.sequence(events))
        return self.mlp(torch.cat(parts, dim=1))
