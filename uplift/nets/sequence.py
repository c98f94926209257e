"""Encoders of each user's behaviour event sequence (uplift layer, torch).

Input: int64 tensor (n, L) of event codes, 0 = padding. Output: (n, n_out), a masked mean over
the encoder's per-step states, so left- or right-padding both work.
"""

from __future__ import annotations

import torch
from torch import nn


def _masked_mean(states: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
    mask = (events > 0).unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


class GRUSequenceEncoder(nn.Module):
    """Event embedding → one-layer GRU → masked mean of the hidden states."""

    def __init__(self, vocab_size: int, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.n_out = dim

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.embed(events))
        return _masked_mean(states, events)


class TransformerSequenceEncoder(nn.Module):
    """Event + position embeddings → one Transformer encoder layer → masked mean."""

    def __init__(self, vocab_size: int, max_len: int, dim: int = 32, heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.n_out = dim

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(events.shape[1], device=events.device)
        x = self.embed(events) + self.position(positions)
        # a fully padded row would make attention NaN: let such rows attend to position 0
        pad = events == 0
        pad[:, 0] = pad[:, 0] & ~pad.all(dim=1)
        return _masked_mean(self.encoder(x, src_key_padding_mask=pad), events)


def build_sequence_encoder(kind: str | None, vocab_size: int, max_len: int) -> nn.Module | None:
    if kind is None:
        return None
    if kind == "gru":
        return GRUSequenceEncoder(vocab_size)
    if kind == "transformer":
        return TransformerSequenceEncoder(vocab_size, max_len)
    raise ValueError(f"sequence_encoder={kind!r} is unknown; use None, 'gru' or 'transformer'")
