"""Fitting ``UpliftModel``: input validation, encoding, splits, ensemble members (uplift layer).

Kept apart from ``uplift.model`` so that the estimator class stays a thin public surface.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from uplift.features import FeatureEncoder
from uplift.losses import OutcomeSpec
from uplift.small_data import (
    SMALL_ARCHITECTURE,
    covariates_imbalanced,
    default_members,
    fold_splits,
    regularization,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from uplift.model import UpliftModel
    from uplift.trainer import TrainConfig, Trainer

MAX_STEPS = 3000  # gradient steps budget when max_epochs is None
MIN_ROWS_PER_ARM = 4
SMALL_DATA = 20_000  # users; up to here the wide CFRNet-sized network is the default
DR_MIN_VAL_PER_ARM = 1_000  # validation users per arm before the DR criterion is trusted
# Large data (n > SMALL_DATA): one minibatch per LARGE_ROWS_PER_BATCH training users (a power of
# two in [1024, 4096]; the learning rate grows with sqrt(batch / 1024)), at least
# LARGE_MIN_EPOCHS epochs, and at most VALIDATION_CAP users held out for early stopping.
LARGE_ROWS_PER_BATCH = 256
LARGE_BATCH_RANGE = (1024, 4096)
LARGE_MIN_EPOCHS = 4
VALIDATION_CAP = 100_000
LARGE_REPRESENTATION = (128, 64)
LARGE_HEAD = (32,)
# Order-value difference penalty for zero-inflated revenue (``TrainConfig.value_difference``),
# chosen on a development draw of the shop simulator (shop seed 1, 50,000 users; the benchmark
# uses seed 0): revenue effect sqrt(PEHE) 2.355 -> 2.19 (1.0: 2.24; 100: 2.21), conversion unchanged.
VALUE_DIFFERENCE = 10.0
IMBALANCE_ROWS = 50_000  # users drawn for the randomization test above SMALL_DATA


def resolve_control(labels: list[Any], control: Any) -> Any:
    if control is None:
        for guess in ("control", 0):
            if any(label == guess for label in labels):
                return guess
        raise ValueError(
            f"no control arm found among treatment labels {labels}; pass control= "
            "with the label of the no-incentive arm"
        )
    if not any(label == control for label in labels):
        raise ValueError(
            f"control={control!r} is not among the treatment labels {labels}; "
            "pass control= with the label of the no-incentive arm"
        )
    return control


def _outcome_array(y: Any, n: int) -> np.ndarray:
    arr = y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else np.asarray(y)
    arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2):
        raise ValueError(
            "y must be 1-D, or 2-D (conversion, revenue) or (visit, conversion); "
            f"got shape {arr.shape}"
        )
    if len(arr) != n:
        raise ValueError(f"y has {len(arr)} rows but X has {n}; pass one outcome per user")
    if not np.isfinite(arr).all():
        raise ValueError("y has NaN or infinite values; drop or fill those rows")
    return arr


def _weights(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n, np.float32)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return w.astype(np.float32)


def encode_sequences(
    model: UpliftModel, sequences: Any, n: int, *, fitting: bool
) -> np.ndarray | None:
    if model.sequence_encoder is None:
        return None
    if sequences is None:
        raise ValueError(
            f"sequence_encoder={model.sequence_encoder!r} needs sequences= "
            "(n_users, max_len) int event codes, 0 = padding"
        )
    events = np.asarray(sequences)
    if events.ndim != 2 or len(events) != n or not np.issubdtype(events.dtype, np.integer):
        raise ValueError(
            f"sequences must be an int array of shape ({n}, max_len), got "
            f"{events.shape} {events.dtype}"
        )
    if (events < 0).any():
        raise ValueError("sequences has negative event codes; use 0 for padding, 1.. for events")
    events = events.astype(np.int64)
    if fitting:
        model.sequence_vocab_ = int(events.max()) + 1
        model.sequence_len_ = int(events.shape[1])
    if events.shape[1] != model.sequence_len_:
        raise ValueError(
            f"sequences must have {model.sequence_len_} columns (as in fit), "
            f"got {events.shape[1]}; pad or cut them"
        )
    events[events >= model.sequence_vocab_] = 0  # unseen event codes read as padding
    return events


def split(
    arm: np.ndarray, fraction: float, seed: int, cap: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified by arm: every arm keeps rows on both sides; ``cap`` bounds the validation
    split's size (each arm keeps its share)."""
    rng = np.random.default_rng(seed)
    if cap is not None and fraction * len(arm) > cap:
        fraction = cap / len(arm)
    train, val = [], []
    for a in np.unique(arm):
        rows = rng.permutation(np.flatnonzero(arm == a))
        n_val = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _schedule(model: UpliftModel, n_train: int, small: bool) -> tuple[int, int, int, float]:
    """Minibatch size, epoch budget, patience and learning rate (explicit parameters win)."""
    if small:
        batch = model.batch_size or int(np.clip(n_train // 8, 64, 1024))
        learning_rate = model.learning_rate
        min_epochs = 8
    else:
        # large data: bigger minibatches, fewer Python-level steps per epoch; Adam's step grows
        # with the square root of the batch (the gradient noise shrinks as 1/sqrt(batch))
        low, high = LARGE_BATCH_RANGE
        auto = int(
            np.clip(2 ** round(math.log2(max(n_train / LARGE_ROWS_PER_BATCH, 1))), low, high)
        )
        batch = model.batch_size or auto
        learning_rate = model.learning_rate * (1.0 if model.batch_size else math.sqrt(batch / low))
        min_epochs = LARGE_MIN_EPOCHS
    epochs = model.max_epochs or int(
        np.clip(math.ceil(MAX_STEPS * batch / max(n_train, 1)), min_epochs, 500)
    )
    patience = model.patience or max(5, epochs // 10)
    return batch, epochs, patience, learning_rate


def _imbalance_sample(
    numeric: np.ndarray, codes: np.ndarray, arm: np.ndarray, seed: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most IMBALANCE_ROWS users (seeded) for the randomization test: its one-hot design is
    dense, and 50,000 users detect any imbalance that matters for the choice."""
    if len(arm) <= IMBALANCE_ROWS:
        return numeric, codes, arm
    rows = np.sort(np.random.default_rng(seed).choice(len(arm), IMBALANCE_ROWS, replace=False))
    return numeric[rows], codes[rows], arm[rows]


def check_params(model: UpliftModel) -> None:
    """The parameter checks ``fit`` starts with, needing no data (ValueError, or KeyError for an
    unknown architecture): callers may refuse bad parameters before they do any work."""
    from uplift.nets import get_architecture

    if model.criterion not in ("auto", "dr", "factual"):
        raise ValueError(f"criterion={model.criterion!r} is unknown; use 'auto', 'dr' or 'factual'")
    if not 0 < model.validation_fraction < 1:
        raise ValueError("validation_fraction must be in (0, 1)")
    for name in ("head_difference", "value_difference"):
        value = getattr(model, name)
        if value is not None and not value >= 0:
            raise ValueError(f"{name} must be >= 0 (or None), got {value}")
    if model.n_estimators is not None and int(model.n_estimators) < 1:
        raise ValueError("n_estimators must be >= 1 (or None for the size-based default)")
    if model.architecture != "auto":
        get_architecture(model.architecture)  # an unknown name fails before any work


def fit_members(
    model: UpliftModel,
    X: Any,
    treatment: Any,
    y: Any,
    *,
    control: Any,
    sample_weight: Any,
    sequences: Any,
    trainer_factory: Callable[[TrainConfig], Trainer] | None = None,
) -> UpliftModel:
    """Fit every ensemble member; ``trainer_factory`` (default ``Trainer``) builds each trainer.

    ``uplift.distributed.fit_distributed`` passes a factory of DDP trainers; nothing else changes.
    """
    from uplift.model import _as_1d_labels, _sorted_labels
    from uplift.nets import get_architecture
    from uplift.selection import dr_pseudo_outcomes
    from uplift.trainer import TrainConfig, TrainData, Trainer

    check_params(model)
    architecture_name = model.architecture
    labels = _as_1d_labels(treatment)
    n = len(X) if isinstance(X, pd.DataFrame) else np.asarray(X).shape[0]
    if len(labels) != n:
        raise ValueError(f"treatment has {len(labels)} rows but X has {n}; pass one label per user")
    y_arr = _outcome_array(y, n)
    weight = _weights(sample_weight, n)
    unique = _sorted_labels(pd.unique(labels).tolist())
    control = resolve_control(unique, control)
    incentives = [label for label in unique if label != control]
    if not incentives:
        raise ValueError("treatment has only the control arm; an uplift model needs incentives")
    arms = [control, *incentives]
    arm = np.zeros(n, np.int64)
    for j, label in enumerate(arms):
        arm[labels == label] = j
    counts = np.bincount(arm, minlength=len(arms))
    if counts.min() < MIN_ROWS_PER_ARM:
        small = [arms[j] for j in np.flatnonzero(counts < MIN_ROWS_PER_ARM)]
        raise ValueError(f"arm(s) {small} have fewer than {MIN_ROWS_PER_ARM} users; drop them")

    encoder = FeatureEncoder.fit(X)
    numeric, codes = encoder.transform(X)
    spec = OutcomeSpec.fit(y_arr, model.outcome)
    model.encoder_, model.outcome_spec_ = encoder, spec
    model.control_, model.incentives_ = control, incentives
    events = encode_sequences(model, sequences, n, fitting=True)
    data = TrainData(numeric, codes, arm, y_arr.astype(np.float32), weight, events)
    targets = spec.targets_array(y_arr)

    small = n <= SMALL_DATA
    representation = model.representation or ((200, 200, 200) if small else LARGE_REPRESENTATION)
    head = model.head or ((100, 100) if small else LARGE_HEAD)
    head_difference = model.head_difference or 0.0
    value_difference = (
        VALUE_DIFFERENCE if model.value_difference is None else float(model.value_difference)
    )
    criterion = model.criterion
    if criterion == "auto":
        criterion = (
            "dr" if counts.min() * model.validation_fraction >= DR_MIN_VAL_PER_ARM else "factual"
        )
    model.criterion_ = criterion
    cap = None if small else VALIDATION_CAP
    n_train = (
        round(n * (1 - model.validation_fraction))
        if small
        else n - min(round(n * model.validation_fraction), VALIDATION_CAP)
    )
    batch, epochs, patience, learning_rate = _schedule(model, n_train, small)
    auto_architecture = architecture_name == "auto"
    imbalanced = False
    if (small and model.balance == "auto") or auto_architecture:
        s_num, s_codes, s_arm = _imbalance_sample(numeric, codes, arm, model.random_state)
        imbalanced = covariates_imbalanced(s_num, s_codes, encoder.cardinalities, s_arm)
    if auto_architecture:
        # randomized data: TARNet (a propensity head has nothing to learn; scoring runs fused);
        # small observational data: SNet, large: DragonNet (see uplift.small_data)
        if not imbalanced:
            architecture_name = "tarnet"
        else:
            architecture_name = SMALL_ARCHITECTURE if small else "dragonnet"
    model.architecture_ = architecture_name
    architecture = get_architecture(architecture_name)
    weight_decay, decoupled, balance, balance_weight = regularization(
        model.weight_decay, model.balance, model.balance_weight, small, small and imbalanced
    )
    n_members = default_members(n) if model.n_estimators is None else int(model.n_estimators)
    seeds = np.random.default_rng(model.random_state).integers(0, 2**31 - 1, n_members)
    # an ensemble is cross-fitted (member j validates on fold j), see uplift.small_data
    folds = fold_splits(arm, n_members, int(seeds[0])) if n_members >= 2 else None
    model.net_kwargs_ = {
        "n_numeric": encoder.n_numeric,
        "cardinalities": encoder.cardinalities,
        "n_arms": len(arms),
        "n_outputs": spec.n_raw,
        "representation": list(representation),
        "head": list(head),
        "dropout": model.dropout,
        "sequence_encoder": model.sequence_encoder,
        "vocab_size": getattr(model, "sequence_vocab_", 0),
        "max_len": getattr(model, "sequence_len_", 0),
    }
    members, model.best_epochs_, model.validation_scores_ = [], [], []
    for j, seed in enumerate(seeds):
        seed = int(seed)
        train_idx, val_idx = (
            folds[j] if folds is not None else split(arm, model.validation_fraction, seed, cap)
        )
        pseudo = None
        if criterion == "dr":
            pseudo = dr_pseudo_outcomes(
                numeric, codes, arm, targets, len(arms), train_idx, val_idx, seed
            )
        import torch

        torch.manual_seed(seed)
        net = architecture(**model.net_kwargs_)
        config = TrainConfig(
            max_epochs=epochs,
            batch_size=batch,
            patience=patience,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled,
            alpha=model.alpha,
            beta=model.beta,
            balance=balance,
            balance_weight=balance_weight,
            criterion=criterion,
            head_difference=float(head_difference),
            value_difference=value_difference,
            device=model.device,
            verbose=model.verbose,
            seed=seed,
        )
        result = (trainer_factory or Trainer)(config).fit(
            net, spec, data, train_idx, val_idx, pseudo
        )
        net.eval()
        members.append(net)
        model.best_epochs_.append(result.best_epoch)
        model.validation_scores_.append(result.best_score)
    model.members_ = members
    return model
