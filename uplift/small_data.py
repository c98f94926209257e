"""Small-data defaults of ``UpliftModel``: a cross-fitted deep ensemble (uplift layer, numpy).

On a few hundred users (IHDP: 672) one network's effect estimate varies a lot with its random
initialization and with which users it holds out for early stopping. Up to
``ENSEMBLE_MAX_USERS`` users the default (``n_estimators=None``) is therefore an ensemble of
``ENSEMBLE_SIZE`` members, **cross-fitted**: the users are cut into as many folds as members
(stratified by arm) and member j stops early on fold j and trains on the others, so every user
is in some member's training set and the validation loss of each member is out of its sample.
The ensemble's prediction is the members' mean.

Chosen on IHDP replications 11–22 (development replications, not the reported 1–50), TARNet
with a per-fold factual early stop, out-of-sample sqrt(PEHE) mean / median: one network 1.13 /
1.02, five cross-fitted members 0.80 / 0.73. The same holds on larger randomized data (see
``ENSEMBLE_MAX_USERS``): the gain is variance, and the members' effects average it out.
"""

from __future__ import annotations

import numpy as np

# Up to here the default is a cross-fitted ensemble (it costs ENSEMBLE_SIZE fits); above it one
# network. 100,000 since session 3: on the shop simulator (50,000 users, a development draw) five
# cross-fitted members cut the conversion effect's sqrt(PEHE) from 0.0253 to 0.0233-0.0235.
ENSEMBLE_MAX_USERS = 100_000
ENSEMBLE_SIZE = 5


def default_members(n_users: int) -> int:
    """Ensemble size when ``n_estimators`` is None."""
    return ENSEMBLE_SIZE if n_users <= ENSEMBLE_MAX_USERS else 1


def fold_splits(arm: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, validation) index pairs; the validation sets are disjoint folds that cover
    every row, each arm dealt round-robin over the folds after a seeded shuffle."""
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {k}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(arm), np.int64)
    offset = 0
    for a in np.unique(arm):
        rows = rng.permutation(np.flatnonzero(arm == a))
        fold[rows] = (np.arange(len(rows)) + offset) % k
        offset += len(rows)  # the next arm continues the rotation: fold sizes differ by <= 1
    everything = np.arange(len(arm))
    return [(everything[fold != j], everything[fold == j]) for j in range(k)]


IMBALANCE_P_VALUE = 1e-4  # Hotelling's test rejects randomization below this


def covariates_imbalanced(
    numeric: np.ndarray, codes: np.ndarray, cardinalities: list[int], arm: np.ndarray
) -> bool:
    """True when some incentive's covariate means differ from control's by more than chance.

    Hotelling's two-sample T² of the mean vectors (numeric features and one-hot categorical
    levels, pooled covariance, pseudo-inverse), referred to chi²(rank) (Hotelling 1931; the
    large-sample form). On randomized data the representation needs no balancing, and a noisy
    minibatch MMD only costs accuracy; IHDP's training splits give T² 83–102 on 25 covariates
    (p < 1e-7), randomized draws of the same size reject at p < 1e-4 well under 1% of the time.
    """
    from scipy.stats import chi2

    blocks = [numeric.astype(np.float64)]
    for j, size in enumerate(cardinalities):
        blocks.append(np.eye(size)[codes[:, j]][:, 1:])
    design = np.hstack(blocks)
    control = design[arm == 0]
    for k in np.unique(arm[arm > 0]):
        treated = design[arm == k]
        if len(treated) < 2 or len(control) < 2:
            continue
        diff = treated.mean(axis=0) - control.mean(axis=0)
        centered = np.vstack([treated - treated.mean(axis=0), control - control.mean(axis=0)])
        cov = centered.T @ centered / max(len(centered) - 2, 1)
        rank = np.linalg.matrix_rank(cov)
        if rank == 0:
            continue
        t2 = diff @ np.linalg.pinv(cov) @ diff * len(treated) * len(control)
        t2 /= len(treated) + len(control)
        if chi2.sf(t2, rank) < IMBALANCE_P_VALUE:
            return True
    return False


# Regularization up to SMALL_DATA users (uplift.fitting.SMALL_DATA), chosen on the same IHDP
# replications 11-22 with the 5-member ensemble: a coupled L2 penalty of 1e-3 in Adam (as CFRNet
# and catenets do; AdamW's decoupled 1e-4 is ~no decay at lr 1e-3) and a linear-MMD balance of
# the representation between each incentive and control with weight 0.3 (CFR), applied only
# when the arms' covariates are imbalanced (IHDP's are; randomized experiments' are not; on a
# randomized 2,000-user test problem MMD raised sqrt(PEHE) from 0.18 to 0.27). Measured there:
# neither 0.80 / 0.73, L2 0.77 / 0.69, MMD 0.78 / 0.66, both 0.73 / 0.59 (mean / median).
# Architecture, same replications with L2 1e-3: DragonNet (alpha = beta = 1) 0.88 / 0.69,
# TARNet 0.77 / 0.69. Session 11, with everything above: TARNet 0.760 / 0.589, SNet
# (uplift.nets.snet: shared, outcome-private and propensity-private representations) 0.518 /
# 0.475, lower on all 12 replications. "auto" uses SNet on small data whose arms' covariates
# are imbalanced (observational, as IHDP) and TARNet on randomized data, where SNet's extra
# representations bought less for their cost: on the speed benchmark's randomized 10,000-user,
# 4-arm problem sqrt(PEHE) 0.0375 against 0.0414, at 6x the fit time (168.5 s against 27.9 s).
SMALL_ARCHITECTURE = "snet"
SMALL_WEIGHT_DECAY = 1e-3
SMALL_BALANCE = "mmd"
SMALL_BALANCE_WEIGHT = 0.3
LARGE_WEIGHT_DECAY = 1e-4  # AdamW, decoupled (the large-data default)
LARGE_BALANCE_WEIGHT = 1.0


def regularization(
    weight_decay: float | None,
    balance: str | None,
    balance_weight: float | None,
    small: bool,
    imbalanced: bool = True,
) -> tuple[float, bool, str | None, float]:
    """(weight decay, decoupled?, balance, balance weight) from the model's parameters.

    Up to SMALL_DATA users the weight decay is an L2 penalty added to the gradient (Adam);
    above, decoupled (AdamW). ``balance="auto"`` is MMD up to SMALL_DATA users when the arms'
    covariates are ``imbalanced`` (``covariates_imbalanced``), else none; a None weight picks
    the regime's default."""
    if balance not in ("auto", None, "mmd", "wasserstein"):
        raise ValueError(
            f"balance={balance!r} is unknown; use 'auto', None, 'mmd' or 'wasserstein'"
        )
    if weight_decay is not None and not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0 (or None), got {weight_decay}")
    if balance_weight is not None and not balance_weight >= 0:
        raise ValueError(f"balance_weight must be >= 0 (or None), got {balance_weight}")
    if weight_decay is None:
        weight_decay = SMALL_WEIGHT_DECAY if small else LARGE_WEIGHT_DECAY
    if balance == "auto":
        balance = SMALL_BALANCE if small and imbalanced else None
    if balance_weight is None:
        balance_weight = SMALL_BALANCE_WEIGHT if small else LARGE_BALANCE_WEIGHT
    return float(weight_decay), not small, balance, float(balance_weight)
