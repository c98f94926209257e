"""SNet-style disentangled network (Curth & van der Schaar 2021, "Nonparametric estimation of
heterogeneous treatment effects: from theory to learning algorithms"), multi-arm.

Three kinds of representation of the same input: one shared by every arm's outcome and the
propensity, one private to each arm's outcome, one private to the propensity. Arm k's outcome
head reads (shared, private_k); the propensity head reads (shared, private_w). A penalty keeps
the representations on different inputs: for the first layer of each, the column sums of
absolute weights (how much each input feature feeds it), and the penalty is the sum over every
(shared, private) pair of the products of those sums, times ``orthogonal``. What an arm learns
only from its own users stays out of the other arms' heads, while what every arm shares is
learned from all of them.

Outputs: ``phi`` (the shared representation; the trainer's balance penalty acts on it),
``outcomes`` (n, n_arms, n_outputs), ``propensity_logits`` and ``penalty`` (the disentangling
term, added to the loss as it is). No targeted regularization (there is no ``epsilon``).
"""

from __future__ import annotations

import torch
from torch import nn

from uplift.nets.blocks import ArmHeads, Representation
from uplift.nets.registry import register
from uplift.nets.sequence import build_sequence_encoder

ORTHOGONAL = 0.01  # catenets' SNet default penalty_orthogonal


def _usage(rep: Representation, n_numeric: int) -> torch.Tensor | None:
    """How much each input feature feeds ``rep``'s first layer: the column sums of its absolute
    weights, one per numeric feature and one per categorical column (its embedding block)."""
    first = next((m for m in rep.mlp.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        return None
    sums = first.weight.abs().sum(dim=0)
    parts, col = [sums[:n_numeric]], n_numeric
    for table in rep.embeddings.tables:
        parts.append(sums[col : col + table.embedding_dim].sum().reshape(1))
        col += table.embedding_dim
    return torch.cat(parts)


@register("snet")
class SNet(nn.Module):
    has_propensity = True

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
        orthogonal: float = ORTHOGONAL,
    ) -> None:
        super().__init__()
        sequence = build_sequence_encoder(sequence_encoder, vocab_size, max_len)
        shared = tuple(representation)
        private = tuple(max(1, w // 2) for w in shared)
        self.shared = Representation(n_numeric, cardinalities, shared, dropout, sequence)
        self.private = nn.ModuleList(
            Representation(n_numeric, cardinalities, private, dropout) for _ in range(n_arms + 1)
        )  # one per arm, the last for the propensity
        n_in = self.shared.n_out + self.private[0].n_out
        # TARNet's per-arm heads; arm k's reads (shared, private_k) instead of one common phi
        self.outcomes = ArmHeads(n_in, n_arms, tuple(head), n_outputs, dropout)
        self.propensity = nn.Linear(n_in, n_arms)
        self.orthogonal = float(orthogonal)
        self.n_numeric = n_numeric

    def _disentangling(self) -> torch.Tensor:
        shared = _usage(self.shared, self.n_numeric)
        if shared is None or self.orthogonal == 0:
            return self.propensity.weight.new_zeros(())
        total = shared.new_zeros(())
        for rep in self.private:
            own = _usage(rep, self.n_numeric)
            if own is not None:
                total = total + (shared * own).sum()
        return self.orthogonal * total

    def forward(
        self, numeric: torch.Tensor, codes: torch.Tensor, events: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        phi = self.shared(numeric, codes, events)
        private = [rep(numeric, codes) for rep in self.private]
        outcomes = torch.stack(
            [
                head(torch.cat([phi, private[k]], dim=1))
                for k, head in enumerate(self.outcomes.heads)
            ],
            dim=1,
        )
        return {
            "phi": phi,
            "outcomes": outcomes,
            "propensity_logits": self.propensity(torch.cat([phi, private[-1]], dim=1)),
            "penalty": self._disentangling(),
        }
