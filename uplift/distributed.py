"""Data-parallel training of ``UpliftModel`` with DistributedDataParallel (uplift layer, torch).

Every process runs the same program with the same arguments under ``torchrun`` (which sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``)::

    context = init_from_env(device="auto")          # gloo on CPU, nccl on CUDA
    model = fit_distributed(UpliftModel(random_state=0), X, treatment, y, control="none")
    if context.is_main:
        model.save(path)

How a step is shared, so that W processes train the same model one process would:

- Identical seeds: every process encodes the same data, draws the same splits, initial weights and
  epoch permutation (DDP also broadcasts rank 0's weights when it wraps the network).
- Each single-process minibatch is split across the processes: process r takes its rows r, r+W,
  r+2W, ... (the strided assignment of torch's ``DistributedSampler``, but per minibatch and
  without its padding, which repeats rows to even out the shards and so biases the last step).
  The W shards of step s are exactly the single-process minibatch s, whatever its size.
- DDP averages the gradients over the W processes; each process scales its weighted-mean loss by
  W x (its rows' weight) / (the minibatch's weight), so the average is the gradient of the
  single-process loss even when the shards differ in size or weight (up to floating-point
  order). A process left without rows (a last minibatch smaller than W) contributes an exact
  zero. Dropout masks differ per rank (the torch seed is offset by the rank after wrapping).
- Validation, early stopping and model selection: rank 0 scores the validation split and
  broadcasts the score, so all processes stop at the same epoch and keep the same best state.
- Checkpoints: rank 0 writes the best state of each member to ``checkpoint_dir`` when it
  improves (atomically); saving the fitted model is rank 0's job too.

With one process this path is bit-identical to the plain ``Trainer``. A non-decomposable batch
term (the CFR ``balance`` penalty) is computed per shard, so it is close to, not equal to, the
single-process one.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from uplift.trainer import TrainConfig, TrainData, Trainer, TrainResult

if TYPE_CHECKING:
    from uplift.losses import OutcomeSpec
    from uplift.model import UpliftModel

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the process group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def backend_for(device: str) -> str:
    """nccl when training runs on CUDA, gloo on CPU (``device`` as in ``UpliftModel``)."""
    if device == "cpu":
        return "gloo"
    if device == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use 'auto' or 'cpu'")
    return "nccl"


def init_from_env(device: str = "auto", *, timeout_s: float = 600.0) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment."""
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing and not dist.is_initialized():
        raise RuntimeError(
            f"{', '.join(missing)} not set: start this program with torchrun, e.g. "
            "`torchrun --nproc-per-node 2 -m experiments.jobs.train_distributed ...`"
        )
    if not dist.is_initialized():
        backend = backend_for(device)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(backend, timeout=dt.timedelta(seconds=timeout_s))
    return current_context()


def current_context() -> DistributedContext:
    if not dist.is_initialized():
        raise RuntimeError("no process group: call uplift.distributed.init_from_env() first")
    return DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
        backend=str(dist.get_backend()),
    )


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class DistributedTrainer(Trainer):
    """``Trainer`` whose hooks shard each minibatch across the process group (see module doc)."""

    def __init__(
        self,
        config: TrainConfig,
        context: DistributedContext | None = None,
        checkpoint_dir: Path | None = None,
    ) -> None:
        self.context = context or current_context()
        if not self.context.is_main:
            config = replace(config, verbose=False)  # one progress bar, rank 0's
        super().__init__(config)
        self.checkpoint_dir = checkpoint_dir
        self._weight = np.ones(0, np.float32)
        self._share = 1.0

    def _device(self) -> torch.device:
        return self.context.device

    def _wrap(self, net: nn.Module, device: torch.device) -> nn.Module:
        device_ids = [device.index] if device.type == "cuda" else None
        wrapped = DistributedDataParallel(net, device_ids=device_ids)
        torch.manual_seed(self.config.seed + self.context.rank)  # per-rank dropout masks
        return wrapped

    def fit(
        self,
        net: nn.Module,
        spec: OutcomeSpec,
        data: TrainData,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        pseudo: np.ndarray | None,
    ) -> TrainResult:
        self._weight = data.weight  # each step's loss share needs the minibatch's weights
        return super().fit(net, spec, data, train_idx, val_idx, pseudo)

    def _batches(self, order: np.ndarray) -> Iterator[np.ndarray]:
        world, rank = self.context.world_size, self.context.rank
        size = self.config.batch_size
        for s in range(math.ceil(len(order) / size)):  # the same steps on every rank
            step = order[s * size : (s + 1) * size]
            local = step[rank::world]
            total = float(self._weight[step].sum())
            mine = float(self._weight[local].sum())
            self._share = world * mine / total if total > 0 and mine > 0 else 0.0
            # a rank without rows still runs the step (DDP needs every rank): one row, weight 0
            yield local if len(local) else step[:1]

    def _loss(
        self,
        net: nn.Module,
        spec: OutcomeSpec,
        out: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        n_arms: int,
    ) -> torch.Tensor:
        # DDP waits for a gradient of every parameter in every step; DragonNet's epsilon gets
        # none when beta == 0. A zero-weighted touch gives each one an exact zero gradient.
        touch = 0.0 * torch.stack([p.sum() for p in net.parameters() if p.requires_grad]).sum()
        if self._share == 0.0:
            return touch
        return super()._loss(net, spec, out, batch, n_arms) * self._share + touch

    def _validate(
        self,
        net: nn.Module,
        spec: OutcomeSpec,
        data: TrainData,
        val_idx: np.ndarray,
        pseudo: np.ndarray | None,
        device: torch.device,
    ) -> float:
        score = torch.zeros(1, dtype=torch.float64, device=device)
        if self.context.is_main:
            score += super()._validate(net, spec, data, val_idx, pseudo, device)
        dist.broadcast(score, src=0)  # every rank takes rank 0's decision
        return float(score.item())

    def _improved(self, best: TrainResult) -> None:
        if not self.context.is_main or self.checkpoint_dir is None:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = self.checkpoint_dir / f"member-seed{self.config.seed}.pt"
        partial = path.with_suffix(".pt.partial")
        torch.save(
            {
                "state_dict": {k: v.detach().cpu() for k, v in best.state_dict.items()},
                "epoch": best.best_epoch,
                "score": best.best_score,
                "seed": self.config.seed,
                "world_size": self.context.world_size,
            },
            partial,
        )
        partial.replace(path)  # a reader never sees half a checkpoint


def fit_distributed(
    model: UpliftModel,
    X: Any,
    treatment: Any,
    y: Any,
    *,
    control: Any = None,
    sample_weight: Any = None,
    sequences: Any = None,
    checkpoint_dir: str | Path | None = None,
    context: DistributedContext | None = None,
) -> UpliftModel:
    """``model.fit(...)`` with every member trained by DDP; call it on every rank, same inputs."""
    from uplift.fitting import fit_members

    context = context or current_context()
    if context.backend == "nccl" and model.device == "cpu":
        raise ValueError("the process group uses nccl (CUDA) but model.device='cpu'; use 'auto'")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    fit_members(
        model,
        X,
        treatment,
        y,
        control=control,
        sample_weight=sample_weight,
        sequences=sequences,
        trainer_factory=lambda config: DistributedTrainer(config, context, folder),
    )
    dist.barrier()
    return model
