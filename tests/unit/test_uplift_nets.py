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
