"""Which share of a sample population a targeting condition admits (read-only helper).

Layer: experiments.services. The sample is the simulated shop's users (2,000 of them, seed 0),
built once per process and kept: the admin shows the share next to the condition as it is typed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from experiments.errors import ValidationError
from experiments.targeting import eval_condition, validate_condition

SAMPLE_USERS = 2_000
SAMPLE_SEED = 0


@functools.cache
def sample_population() -> tuple[dict[str, Any], ...]:
    """The simulated users as attribute dicts (``id`` is the unit id, the default hash attribute)."""
    from experiments.simulation import simulate_shop  # pandas: imported only when needed

    users = simulate_shop(n_users=SAMPLE_USERS, seed=SAMPLE_SEED).users
    rows = users.astype(object).to_dict("records")
    return tuple({"id": row["unit_id"], **row} for row in rows)


def qualifying_share(condition: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"matched": k, "sample": n, "share": k / n}`` for ``condition`` (None admits everyone)."""
    population = sample_population()
    if not condition:
        matched = len(population)
    else:
        try:
            validate_condition(condition)
        except ValueError as exc:
            raise ValidationError("condition", str(exc)) from None
        matched = sum(1 for attributes in population if eval_condition(attributes, condition))
    return {"matched": matched, "sample": len(population), "share": matched / len(population)}


def sample_attributes() -> list[str]:
    """The attribute names a condition may use on the sample (for the form's hint)."""
    return sorted(sample_population()[0])
