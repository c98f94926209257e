"""Training loop for the uplift networks (uplift layer, torch).

The trainer owns everything the networks don't: the device (chosen when ``fit`` runs: CUDA when
present, with bf16 autocast there, else CPU), seeded minibatch order, AdamW, the DragonNet
propensity and targeted-regularization terms, the CFR balancing penalty, early stopping and model
selection on the validation split, and the tqdm progress bar.

Data-parallel training (DDP under ``torchrun``) is opt-in: ``uplift.distributed.DistributedTrainer``
overrides the small hooks below (``_device``, ``_wrap``, ``_batches``, ``_improved``); a plain
``Trainer`` never touches ``torch.distributed``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from tqdm.auto import tqdm

from uplift.losses import OutcomeSpec, balance_penalty, clever_covariate
from uplift.scoring import FusedForward, supports
from uplift.selection import dr_loss

EVAL_CHUNK = 65_536  # rows per forward pass of a network with a sequence encoder
SCORE_CHUNK = 4_096  # rows per fused forward pass (measured fastest of 2k-64k on 2 cores)


@dataclass
class TrainData:
    """Encoded arrays; ``arm`` is 0 for control, 1..K for the incentives."""

    numeric: np.ndarray
    codes: np.ndarray
    arm: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    events: np.ndarray | None = None

    _cache: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    def on(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Every array as a tensor on ``device``, converted once (zero-copy on the CPU)."""
        key = str(device)
        if key not in self._cache:
            arrays = {
                "numeric": self.numeric,
                "codes": self.codes,
                "arm": self.arm,
                "y": self.y,
                "weight": self.weight,
                "events": self.events,
            }
            self._cache[key] = {
                name: torch.from_numpy(np.ascontiguousarray(a)).to(device)
                for name, a in arrays.items()
                if a is not None
            }
        return self._cache[key]

    def tensors(self, idx: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """The rows ``idx`` of every array, on ``device``."""
        full = self.on(device)
        rows = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(device)
        return {name: t.index_select(0, rows) for name, t in full.items()}

    def rows(self, start: int, stop: int, device: torch.device) -> dict[str, torch.Tensor]:
        """A contiguous slice of rows (no copy on the CPU)."""
        return {name: t[start:stop] for name, t in self.on(device).items()}


@dataclass
class TrainConfig:
    max_epochs: int
    batch_size: int
    patience: int
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    decoupled_weight_decay: bool = True  # AdamW; False: Adam with an L2 term in the gradient
    alpha: float = 1.0  # propensity cross-entropy weight (DragonNet)
    beta: float = 1.0  # targeted-regularization weight (DragonNet)
    balance: str | None = None
    balance_weight: float = 1.0
    criterion: str = "dr"
    # > 0: every incentive head starts as a copy of the control head, and the loss adds
    # head_difference x the mean over incentives of the squared distance between that head's
    # parameters and the control head's (catenets' TNet "penalty_diff", Curth & van der Schaar
    # 2021): the effect, a difference of heads, is shrunk towards zero, not each outcome
    head_difference: float = 0.0
    # > 0 and a zero-inflated outcome: the loss adds value_difference x the mean over users and
    # incentives of the squared centred difference between that incentive's order-value output
    # and the control's (standardized units). Only converters inform the order value (~9 % of
    # users in the shop simulator), so each arm's own value head is mostly noise; this shrinks
    # the per-user differences towards the average one and leaves conversion free
    value_difference: float = 0.0
    device: str = "auto"
    verbose: bool = True
    seed: int = 0


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    history: list[float] = field(default_factory=list)


def choose_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available; use device='auto' or 'cpu'")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def predict_raw(
    net: nn.Module,
    data: TrainData,
    idx: np.ndarray | None,
    device: torch.device,
    fused: FusedForward | None = None,
) -> np.ndarray:
    """Raw head outputs (n, n_arms, n_raw) as float32 numpy, computed in chunks.

    ``idx=None`` scores every row in order (contiguous slices, no gather). Networks without a
    sequence encoder run through ``uplift.scoring.FusedForward`` (same outputs, one matmul per
    layer for all arms); on the CPU its chunks of ``SCORE_CHUNK`` rows (small enough to stay in
    cache) are spread over ``torch.get_num_threads()`` worker threads, each running torch with
    one thread, which keeps every core busy without OpenMP's barrier per operation. ``fused``
    is a ``FusedForward`` of ``net`` built earlier (a fitted model keeps one per member, so that
    scoring one user does not restack the weights); None builds one here.
    """
    if net.training:
        net.eval()
    n = len(data.arm) if idx is None else len(idx)
    if fused is None and supports(net):
        fused = FusedForward(net, device)
    chunk = SCORE_CHUNK if fused is not None else EVAL_CHUNK
    starts = range(0, n, chunk)
    out: np.ndarray | None = None

    def score(start: int) -> np.ndarray:
        stop = min(start + chunk, n)
        with torch.inference_mode(), autocast(device):
            if idx is None:
                batch = data.rows(start, stop, device)
            else:
                batch = data.tensors(idx[start:stop], device)
            if fused is not None:
                raw = fused(batch["numeric"], batch["codes"])
            else:
                raw = net(batch["numeric"], batch["codes"], batch.get("events"))["outcomes"]
            return raw.float().cpu().numpy()

    def store(start: int, raw: np.ndarray) -> None:
        nonlocal out
        if out is None:
            out = np.empty((n, *raw.shape[1:]), np.float32)
        out[start : start + len(raw)] = raw

    workers = torch.get_num_threads() if fused is not None and device.type == "cpu" else 1
    if workers > 1 and len(starts) > 1:
        data.on(device)  # convert once, before the threads read it
        with _one_torch_thread(), ThreadPoolExecutor(workers) as pool:
            for start, raw in zip(starts, pool.map(score, starts), strict=True):
                store(start, raw)
    else:
        for start in starts:
            store(start, score(start))
    return out if out is not None else np.zeros((0,), np.float32)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def tie_heads(net: nn.Module, spec: OutcomeSpec, data: TrainData, train_idx: np.ndarray) -> None:
    """Start every incentive head as a copy of the control head, its output bias moved by the
    arm's marginal difference on the raw (link) scale: the initial effect is the observed
    average effect, so the unpenalized output bias need not travel there step by step."""
    heads = net.outcomes.heads
    links = [
        _marginal_link(spec, data, train_idx[data.arm[train_idx] == a]) for a in range(len(heads))
    ]
    with torch.no_grad():
        control = heads[0].state_dict()
        for a, head in enumerate(heads[1:], start=1):
            head.load_state_dict(control)
            bias = list(head.parameters())[-1]
            bias += torch.as_tensor(links[a] - links[0], dtype=bias.dtype)


def _marginal_link(spec: OutcomeSpec, data: TrainData, rows: np.ndarray) -> np.ndarray:
    """The raw head outputs (n_raw,) whose expectation is the rows' weighted mean outcome."""
    if not len(rows):
        return np.zeros(spec.n_raw)
    w = data.weight[rows].astype(np.float64)
    y = data.y[rows].astype(np.float64)

    def mean(v: np.ndarray, weight: np.ndarray) -> float:
        return float((v * weight).sum() / max(weight.sum(), 1e-12))

    def logit(p: float) -> float:
        p = min(max(p, 1e-4), 1 - 1e-4)
        return math.log(p / (1 - p))

    if spec.kind == "binary":
        return np.array([logit(mean(y[:, 0], w))])
    if spec.kind == "continuous":
        return np.array([(mean(y[:, 0], w) - spec.loc) / spec.scale])
    positive = (y[:, 0] > 0).astype(np.float64)
    if spec.kind == "funnel":  # the first stage's rate, then the outcome's rate after it
        return np.array([logit(mean(positive, w)), logit(mean(y[:, 1], w * positive))])
    value = mean(y[:, -1], w * positive) if (w * positive).sum() > 0 else spec.loc
    return np.array([logit(mean(positive, w)), (value - spec.loc) / spec.scale])


def value_spread(outcomes: torch.Tensor) -> torch.Tensor:
    """Mean squared centred difference of the incentives' second outputs from the control's;
    ``outcomes`` (n, n_arms, 2) of a zero-inflated network (column 1 the standardized order
    value) or of a funnel (column 1 the conversion-given-visit logit)."""
    diff = outcomes[:, 1:, 1] - outcomes[:, :1, 1]
    return ((diff - diff.mean(dim=0, keepdim=True)) ** 2).mean()


def head_distance(net: nn.Module) -> torch.Tensor:
    """Mean over incentive heads of the squared L2 distance of their parameters to the control
    head's (the heads share one architecture). The output layer's bias is left out: the average
    effect is well identified on randomized data and is not shrunk, only its heterogeneity."""
    heads = list(net.outcomes.heads)
    control = list(heads[0].parameters())[:-1]
    total = control[0].new_zeros(())
    for head in heads[1:]:
        for p, p0 in zip(list(head.parameters())[:-1], control, strict=True):
            total = total + ((p - p0) ** 2).sum()
    return total / max(len(heads) - 1, 1)


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def fit(
        self,
        net: nn.Module,
        spec: OutcomeSpec,
        data: TrainData,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        pseudo: np.ndarray | None,
    ) -> TrainResult:
        cfg = self.config
        device = self._device()
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        net.to(device)
        model = self._wrap(net, device)
        adam = torch.optim.AdamW if cfg.decoupled_weight_decay else torch.optim.Adam
        optimizer = adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        n_arms = len(net.outcomes.heads)
        if cfg.head_difference > 0:
            tie_heads(net, spec, data, train_idx)
        best = TrainResult(copy.deepcopy(net.state_dict()), -1, math.inf)
        bar = tqdm(range(cfg.max_epochs), desc="uplift fit", disable=not cfg.verbose, leave=False)
        for epoch in bar:
            net.train()
            order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
            for rows in self._batches(order):
                batch = data.tensors(rows, device)
                with autocast(device):
                    out = model(batch["numeric"], batch["codes"], batch.get("events"))
                loss = self._loss(net, spec, out, batch, n_arms)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            score = self._validate(net, spec, data, val_idx, pseudo, device)
            best.history.append(score)
            if score < best.best_score or not math.isfinite(best.best_score):
                best = TrainResult(copy.deepcopy(net.state_dict()), epoch, score, best.history)
                self._improved(best)
            bar.set_postfix(val=f"{score:.4g}", best=best.best_epoch)
            if epoch - best.best_epoch >= cfg.patience:
                break
        bar.close()
        net.load_state_dict(best.state_dict)
        net.to("cpu")
        best.state_dict = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        return best

    # Hooks: the identity for one process; uplift.distributed.DistributedTrainer overrides them.
    def _device(self) -> torch.device:
        return choose_device(self.config.device)

    def _wrap(self, net: nn.Module, device: torch.device) -> nn.Module:
        """The module whose forward runs in training (DDP wraps ``net`` here)."""
        return net

    def _batches(self, order: np.ndarray) -> Iterator[np.ndarray]:
        """This process's minibatches (row indices) of one epoch's shuffled ``order``."""
        size = self.config.batch_size
        for s in range(math.ceil(len(order) / size)):
            yield order[s * size : (s + 1) * size]

    def _improved(self, best: TrainResult) -> None:
        """Called when the validation score improves (DDP: rank 0 writes a checkpoint)."""

    def _loss(
        self,
        net: nn.Module,
        spec: OutcomeSpec,
        out: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        n_arms: int,
    ) -> torch.Tensor:
        cfg = self.config
        arm, y, w = batch["arm"], batch["y"], batch["weight"]
        outcomes = out["outcomes"].float()
        factual = outcomes[torch.arange(len(arm), device=arm.device), arm]
        loss = spec.factual_loss(factual, y, w)
        if "propensity_logits" in out:
            logits = out["propensity_logits"].float()
            ce = F.cross_entropy(logits, arm, reduction="none")
            loss = loss + cfg.alpha * (ce * w).sum() / w.sum()
            if cfg.beta > 0 and hasattr(net, "epsilon"):  # DragonNet's targeted term
                clever = clever_covariate(torch.softmax(logits, dim=1), arm)
                loss = loss + cfg.beta * spec.targeted_loss(factual, y, w, clever, net.epsilon)
        if cfg.balance:
            loss = loss + cfg.balance_weight * balance_penalty(
                out["phi"].float(), arm, n_arms, cfg.balance
            )
        if "penalty" in out:  # an architecture's own regularizer (SNet's disentangling)
            loss = loss + out["penalty"].float()
        if "penalty" in out:  # an architecture's own regularizer (SNet's disentangling)
            loss = loss + out["penalty"].float()
        if cfg.head_difference > 0:
            loss = loss + cfg.head_difference * head_distance(net)
        if cfg.value_difference > 0 and spec.kind in ("zero_inflated", "funnel"):
            loss = loss + cfg.value_difference * value_spread(outcomes)
        return loss

    def _validate(
        self,
        net: nn.Module,
        spec: OutcomeSpec,
        data: TrainData,
        val_idx: np.ndarray,
        pseudo: np.ndarray | None,
        device: torch.device,
    ) -> float:
        raw = torch.from_numpy(predict_raw(net, data, val_idx, device))
        weight = data.weight[val_idx]
        if self.config.criterion == "dr" and pseudo is not None:
            mu = spec.expected(raw).numpy()
            return dr_loss(pseudo, mu[:, 1:] - mu[:, :1], weight)
        arm = torch.from_numpy(data.arm[val_idx])
        factual = raw[torch.arange(len(arm)), arm]
        y = torch.from_numpy(data.y[val_idx])
        return float(spec.factual_loss(factual, y, torch.from_numpy(weight)))
