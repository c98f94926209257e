"""Holdout and exploration buckets: model-free randomization with known propensities.

Layer: ``experiments.strategy`` (pure numpy). A unit falls in the **holdout** when
``hash(salt, id) < holdout`` (it gets no incentive), in the **explore** bucket when the same hash
lies in ``[holdout, holdout + explore)`` (it gets an arm drawn uniformly, by a second hash, from
``{none} + its eligible incentives``), and in the **exploit** bucket otherwise (the optimizer
decides). Neither bucket looks at any model output, so, with ``m_i = 1 + #eligible incentives``,
the probability that unit i receives arm a is (the hash acting as the randomization)::

    P(a | i) = holdout [a = none] + explore / m_i [a eligible or none] + (1 - holdout - explore) [a = pi(i)]

where ``pi(i)`` is the exploit policy's choice; every eligible arm gets at least ``explore / m_i``.
"""

from __future__ import annotations

import numpy as np

from experiments.strategy.hashing import unit_hash

BUCKETS: tuple[str, ...] = ("holdout", "explore", "exploit")
HOLDOUT, EXPLORE, EXPLOIT = 0, 1, 2


def check_shares(holdout: float, explore: float) -> None:
    for name, share in (("holdout", holdout), ("explore", explore)):
        if not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
            raise ValueError(f"{name} = {share!r} must be a share in [0, 1], e.g. 0.05")
    if holdout + explore > 1.0:
        raise ValueError(f"holdout + explore = {holdout + explore} must not exceed 1")


def assign(
    unit_ids: np.ndarray | None,
    n: int,
    eligible: np.ndarray,
    holdout: float,
    explore: float,
    salt: str,
    hash_version: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Bucket code per unit (0 holdout, 1 explore, 2 exploit) and the explore draw (-1 = none).

    The explore arm is drawn for every unit (it is used only in the explore bucket), so a unit's
    draw does not depend on the shares.
    """
    check_shares(holdout, explore)
    code = np.full(n, EXPLOIT, dtype=np.int8)
    explore_arm = np.full(n, -1, dtype=np.int32)
    if holdout == 0 and explore == 0:
        return code, explore_arm
    if unit_ids is None:
        raise ValueError(
            "unit_ids is required when holdout or explore > 0: the buckets hash the unit id "
            "so that batch scoring and serving put a unit in the same bucket"
        )
    ids = np.asarray(unit_ids)
    if ids.shape != (n,):
        raise ValueError(f"unit_ids must have shape ({n},) (one id per user); got {ids.shape}")
    u = unit_hash(salt, ids, hash_version)
    code[u < holdout + explore] = EXPLORE
    code[u < holdout] = HOLDOUT
    draw = unit_hash(salt + ":explore-arm", ids, hash_version)
    m = 1 + eligible.sum(axis=1)
    j = np.minimum((draw * m).astype(np.int64), m - 1)  # 0 = none, else the j-th eligible arm
    rank = np.cumsum(eligible, axis=1)
    pick = (rank == j[:, None]) & eligible
    explore_arm[:] = np.where(j > 0, pick.argmax(axis=1), -1)
    return code, explore_arm


def propensity(
    arm: np.ndarray,
    exploit_arm: np.ndarray,
    n_eligible: np.ndarray,
    holdout: float,
    explore: float,
) -> np.ndarray:
    """Logged propensity of the arm each unit received (module doc); arm -1 = none."""
    p = explore / (1.0 + n_eligible)
    p = p + holdout * (arm < 0)
    return p + (1.0 - holdout - explore) * (arm == exploit_arm)


def action_probabilities(
    exploit_arm: np.ndarray, eligible: np.ndarray, holdout: float, explore: float
) -> np.ndarray:
    """Full distribution ``(n, 1 + n_incentives)`` over {none, incentives} (column 0 = none)."""
    n, k = eligible.shape
    m = 1.0 + eligible.sum(axis=1)
    probs = np.zeros((n, k + 1))
    probs[:, 0] = holdout + explore / m
    probs[:, 1:] = eligible * (explore / m)[:, None]
    probs[np.arange(n), exploit_arm + 1] += 1.0 - holdout - explore
    return probs
