"""Saving and loading ``UpliftModel`` without pickle (uplift layer).

A saved model is a folder: ``metadata.json`` (parameters, feature encoder, outcome spec, arm
labels, network sizes) and ``weights.pt`` (a flat dict of tensors read back with
``torch.load(weights_only=True)``, so loading never unpickles arbitrary objects).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from uplift.model import UpliftModel

FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def save_model(model: UpliftModel, path: Path) -> None:
    import torch

    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "params": {k: _plain(v) for k, v in model.get_params().items()},
        "control": _plain(model.control_),
        "incentives": _plain(list(model.incentives_)),
        "encoder": model.encoder_.to_dict(),
        "outcome_spec": model.outcome_spec_.to_dict(),
        "architecture": model.architecture_,
        "net_kwargs": model.net_kwargs_,
        "n_members": len(model.members_),
        "sequence": [getattr(model, "sequence_vocab_", 0), getattr(model, "sequence_len_", 0)],
        "criterion": model.criterion_,
        "best_epochs": _plain(model.best_epochs_),
        "validation_scores": _plain(model.validation_scores_),
    }
    tensors = {
        f"{m}.{name}": tensor.detach().cpu().contiguous()
        for m, net in enumerate(model.members_)
        for name, tensor in net.state_dict().items()
    }
    (path / "metadata.json").write_text(json.dumps(meta, indent=2))
    torch.save(tensors, path / "weights.pt")


def load_model(cls: type[UpliftModel], path: Path) -> UpliftModel:
    import torch

    from uplift.features import FeatureEncoder
    from uplift.losses import OutcomeSpec
    from uplift.nets import get_architecture

    meta_file, weight_file = path / "metadata.json", path / "weights.pt"
    if not meta_file.exists() or not weight_file.exists():
        raise FileNotFoundError(
            f"{path} is not a saved UpliftModel (needs metadata.json and "
            "weights.pt, written by UpliftModel.save)"
        )
    meta = json.loads(meta_file.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {meta.get('format_version')} is not "
            f"{FORMAT_VERSION}; re-save the model with this liftlab version"
        )
    params = meta["params"]
    for key in ("representation", "head"):
        if params[key] is not None:
            params[key] = tuple(params[key])
    model = cls(**params)
    model.control_ = meta["control"]
    model.incentives_ = meta["incentives"]
    model.encoder_ = FeatureEncoder.from_dict(meta["encoder"])
    model.outcome_spec_ = OutcomeSpec(**meta["outcome_spec"])
    model.net_kwargs_ = meta["net_kwargs"]
    model.sequence_vocab_, model.sequence_len_ = meta["sequence"]
    model.criterion_ = meta["criterion"]
    model.best_epochs_ = meta["best_epochs"]
    model.validation_scores_ = meta["validation_scores"]
    tensors = torch.load(weight_file, weights_only=True, map_location="cpu")
    # the resolved name ("auto" picks by data size); models saved before it was stored name it
    model.architecture_ = meta.get("architecture", params["architecture"])
    architecture = get_architecture(model.architecture_)
    members = []
    for m in range(meta["n_members"]):
        net = architecture(**model.net_kwargs_)
        prefix = f"{m}."
        net.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )
        net.eval()
        members.append(net)
    model.members_ = members
    return model
