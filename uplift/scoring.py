"""Fast CPU/GPU scoring of the uplift networks: one fused forward pass per member (uplift layer).

``predict_raw`` in ``uplift.trainer`` calls ``FusedForward`` for networks without a sequence
encoder. It computes exactly what ``net(numeric, codes)["outcomes"]`` computes (the same
arithmetic up to floating-point summation order), with fewer, larger operations:

* The categorical embeddings are folded into the first layer: for column j with table E_j and the
  first layer's weight block W_j, ``E_j @ W_j.T`` is one (levels × width) table, and the first
  layer is ``numeric @ W_num.T + b + Σ_j T_j[codes_j]`` (one ``embedding_bag`` sum).
* The arms' heads run as one network: their first layers are stacked into one matrix, every later
  layer is one block-diagonal matrix, so all arms take one matmul per layer instead of a loop.
* Activations (ELU) run in place, as ``max(x, exp(min(x, 0)) - 1)`` (:func:`elu_`): torch's
  CPU ELU goes through ``expm1``, which on this project's AVX2 machines is 2.7x slower than
  ``exp``; the two differ by at most one float32 rounding (6e-8). The propensity head (not
  needed for outcomes) is skipped.

The weights are read from the network when ``FusedForward`` is built; build it again after the
weights change (the trainer builds one per validation pass).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def _linear_layers(module: nn.Module) -> list[nn.Linear]:
    """The Linear layers of an MLP block, checking that every activation is ELU(alpha=1)."""
    layers = []
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            layers.append(layer)
        elif isinstance(layer, nn.ELU) and layer.alpha != 1.0:
            raise ValueError("FusedForward supports ELU(alpha=1) activations only")
    return layers


def supports(net: nn.Module) -> bool:
    """True when ``net`` is a TARNet-family network that ``FusedForward`` can run."""
    rep = getattr(net, "representation", None)
    heads = getattr(getattr(net, "outcomes", None), "heads", None)
    return rep is not None and heads is not None and getattr(rep, "sequence", None) is None


def elu_(h: torch.Tensor) -> torch.Tensor:
    """ELU(alpha=1) of ``h`` in place: ``max(x, e^min(x, 0) - 1)``, since e^x - 1 >= x for
    x <= 0 and e^0 - 1 = 0 < x for x > 0. Used on inference only (it is not differentiable
    the way ``F.elu`` is)."""
    negative = torch.clamp(h, max=0.0).exp_().sub_(1.0)
    return torch.maximum(h, negative, out=h)


class FusedForward:
    """Stacked, folded copies of a network's weights and the forward pass over them."""

    def __init__(self, net: nn.Module, device: torch.device | None = None) -> None:
        if not supports(net):
            raise ValueError("FusedForward needs a TARNet/DragonNet without a sequence encoder")
        rep = net.representation
        device = device or next(net.parameters()).device
        with torch.no_grad():
            rep_layers = _linear_layers(rep.mlp)
            first = rep_layers[0] if rep_layers else None
            n_numeric = first.in_features - rep.embeddings.n_out if first else 0
            self.tables = rep.embeddings.tables
            if first is None:  # no hidden representation layer: phi is the raw input
                self._first = None
                self.phi_dim = n_numeric + rep.embeddings.n_out
            else:
                w = first.weight.detach().float()
                self._first = (
                    w[:, :n_numeric].T.contiguous().to(device),
                    first.bias.detach().float().to(device),
                    self._folded_tables(w[:, n_numeric:], device),
                )
            self._rep = [
                (lin.weight.detach().float().T.contiguous().to(device), lin.bias.detach().float())
                for lin in rep_layers[1:]
            ]
            self._rep = [(w, b.to(device)) for w, b in self._rep]
            self._heads, self.n_arms, self.n_outputs = self._stack_heads(net, device)

    def _folded_tables(
        self, w_cat: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """One concatenated (Σ levels × width) table of ``E_j @ W_j.T`` and each column's offset."""
        if not len(self.tables):
            return None
        parts, offsets, col, row = [], [], 0, 0
        for table in self.tables:
            dim = table.embedding_dim
            parts.append(table.weight.detach().float() @ w_cat[:, col : col + dim].T)
            offsets.append(row)
            col += dim
            row += table.num_embeddings
        return torch.cat(parts).to(device), torch.tensor(offsets, device=device)

    @staticmethod
    def _stack_heads(
        net: nn.Module, device: torch.device
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int, int]:
        per_arm = [_linear_layers(head) for head in net.outcomes.heads]
        n_arms, depth = len(per_arm), len(per_arm[0])
        stacked = []
        for d in range(depth):
            weights = [layers[d].weight.detach().float() for layers in per_arm]
            biases = torch.cat([layers[d].bias.detach().float() for layers in per_arm])
            # the first layer reads the shared phi: stack; later layers read their own arm's
            # block of the previous output: block-diagonal
            w = torch.cat(weights) if d == 0 else torch.block_diag(*weights)
            stacked.append((w.T.contiguous().to(device), biases.to(device)))
        return stacked, n_arms, per_arm[0][-1].out_features

    def __call__(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Raw head outputs (n, n_arms, n_outputs), float32."""
        numeric = numeric.float()
        if self._first is None:
            parts = [numeric] + [t(codes[:, j]) for j, t in enumerate(self.tables)]
            h = torch.cat(parts, dim=1)
        else:
            w_num, bias, folded = self._first
            if folded is None:
                h = torch.addmm(bias, numeric, w_num)
            else:
                table, offsets = folded
                # one bag of n_categorical rows per user, summed: Σ_j T_j[codes_j]
                bags = F.embedding_bag(codes + offsets, table, mode="sum")
                h = torch.addmm(bags.add_(bias), numeric, w_num)
            elu_(h)
        for w, b in self._rep:
            h = elu_(torch.addmm(b, h, w))
        last = len(self._heads) - 1
        for d, (w, b) in enumerate(self._heads):
            h = torch.addmm(b, h, w)
            if d < last:
                elu_(h)
        return h.view(len(h), self.n_arms, self.n_outputs)
