"""Architecture registry and network shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from uplift.nets import available, get_architecture, register


def test_registry_lists_and_refuses() -> None:
    assert {"tarnet", "dragonnet"} <= set(available())
    with pytest.raises(KeyError, match="already registered"):
        register("tarnet")(nn.Module)
    with pytest.raises(KeyError, match="unknown architecture 'cevae'"):
        get_architecture("cevae")


def test_dragonnet_outputs() -> None:
    net = get_architecture("dragonnet")(
        n_numeric=3, cardinalities=[4], n_arms=3, n_outputs=2, representation=(8,), head=(4,)
    )
    out = net(torch.zeros(5, 3), torch.tensor([[0], [1], [2], [3], [0]]))
    assert out["outcomes"].shape == (5, 3, 2)
    assert out["propensity_logits"].shape == (5, 3)
    assert net.epsilon.shape == (2, 2)


def test_snet_outputs_and_its_disentangling_penalty() -> None:
    net = get_architecture("snet")(
        n_numeric=3, cardinalities=[4], n_arms=3, n_outputs=2, representation=(8, 8), head=(4,)
    )
    assert "snet" in available()
    out = net(torch.zeros(5, 3), torch.tensor([[0], [1], [2], [3], [0]]))
    assert out["outcomes"].shape == (5, 3, 2)
    assert out["propensity_logits"].shape == (5, 3)
    assert out["phi"].shape == (5, 8)
    assert len(net.private) == 4  # one per arm and one for the propensity
    assert net.private[0].n_out == 4  # half the shared widths

    def usage(rep):  # per input: |W| column sums, the embedding block summed as one input
        w = rep.mlp.layers[0].weight.detach().abs().sum(dim=0)
        return torch.cat([w[:3], w[3:].sum().reshape(1)])

    shared = usage(net.shared)
    expected = 0.01 * sum((shared * usage(rep)).sum() for rep in net.private)
    assert torch.allclose(out["penalty"], expected)
    out["penalty"].backward()  # it trains the first layers of both kinds
    assert net.shared.mlp.layers[0].weight.grad.abs().sum() > 0
    assert net.private[2].mlp.layers[0].weight.grad.abs().sum() > 0
    assert not hasattr(net, "epsilon")  # no targeted regularization
