"""The running experiments, compiled for serving, cached per process (layer: experiments.services).

Each call runs one query: the columns that serving depends on, of the running experiments, their
variants and the variants' incentives and strategies (a handful of rows). Those rows are the cache
key and the compiled experiments are a pure function of them: equal rows reuse the compiled
experiments, other rows compile anew. So starting, stopping or editing an experiment, a variant,
an incentive or a strategy — through the admin, the API, the CLI or directly in SQL, in any
process — is served from the very next request, with no TTL and no signal between processes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from experiments.assignment import ExperimentConfig
from experiments.db import Experiment, Incentive, Strategy, Variant
from experiments.services.experiments import assignment_config

_E, _V, _I, _S = (m.__table__ for m in (Experiment, Variant, Incentive, Strategy))
EXPERIMENT_COLUMNS = (
    "id",
    "key",
    "name",
    "status",
    "seed",
    "hash_version",
    "hash_attribute",
    "coverage",
    "namespace",
    "namespace_start",
    "namespace_end",
    "condition",
    "forced",
)
VARIANT_COLUMNS = ("id", "key", "name", "position", "weight", "incentive_id", "strategy_id")
INCENTIVE_COLUMNS = ("key", "kind", "name", "params")
JSON_COLUMNS = frozenset({"e_condition", "e_forced", "i_params"})


def _column(table: Any, name: str, label: str) -> Any:
    # JSON as its text: the rows are compared on every request, parsed only when compiled
    column = table.c[name]
    return (cast(column, Text) if label in JSON_COLUMNS else column).label(label)


SERVING_ROWS = (
    select(
        *(_column(_E, c, f"e_{c}") for c in EXPERIMENT_COLUMNS),
        *(_column(_V, c, f"v_{c}") for c in VARIANT_COLUMNS),
        *(_column(_I, c, f"i_{c}") for c in INCENTIVE_COLUMNS),
        _S.c.key.label("s_key"),
    )
    .select_from(
        _E.join(_V, _V.c.experiment_id == _E.c.id)
        .outerjoin(_I, _I.c.id == _V.c.incentive_id)
        .outerjoin(_S, _S.c.id == _V.c.strategy_id)
    )
    .where(_E.c.status == "running")
    .order_by(_E.c.id, _V.c.position)
)


@dataclass(frozen=True)
class Arm:
    """A variant as served: its incentive payload (None for the control) or its strategy's key."""

    id: int
    key: str
    name: str
    position: int
    incentive_key: str | None
    incentive: Mapping[str, Any] | None
    strategy: str | None

    def incentive_payload(self) -> dict[str, Any] | None:
        """A copy of the payload, so that no caller can change the cached one."""
        return copy.deepcopy(dict(self.incentive)) if self.incentive is not None else None


@dataclass(frozen=True)
class RunningExperiment:
    id: int
    key: str
    name: str
    config: ExperimentConfig
    arms: tuple[Arm, ...]

    def arm(self, variant_id: int) -> Arm:
        return next(a for a in self.arms if a.id == variant_id)


NAMES = tuple(c.name for c in SERVING_ROWS.selected_columns)
# (rows, compiled): replaced as a whole, so threads always read a consistent pair
_cached: tuple[tuple[tuple[Any, ...], ...], tuple[RunningExperiment, ...]] | None = None


def running_experiments(session: Session) -> tuple[RunningExperiment, ...]:
    """The running experiments in id order (one query; compiled again only when rows change)."""
    global _cached
    rows = tuple(tuple(row) for row in session.execute(SERVING_ROWS))
    cached = _cached
    if cached is not None and cached[0] == rows:
        return cached[1]
    compiled = compile_rows(rows)
    _cached = (rows, compiled)
    return compiled


def compile_rows(rows: Sequence[Sequence[Any]]) -> tuple[RunningExperiment, ...]:
    """Compile serving rows with the admin's own ``assignment_config`` (on transient objects)."""
    experiments: dict[int, tuple[Experiment, list[Arm]]] = {}
    for row in rows:
        values = {
            name: json.loads(value) if name in JSON_COLUMNS and value is not None else value
            for name, value in zip(NAMES, row, strict=True)
        }
        if values["e_id"] not in experiments:
            experiment = Experiment(**{c: values[f"e_{c}"] for c in EXPERIMENT_COLUMNS})
            experiments[values["e_id"]] = (experiment, [])
        experiment, arms = experiments[values["e_id"]]
        experiment.variants.append(Variant(**{c: values[f"v_{c}"] for c in VARIANT_COLUMNS}))
        incentive = (
            {c: values[f"i_{c}"] for c in INCENTIVE_COLUMNS}
            if values["v_incentive_id"] is not None
            else None
        )
        arms.append(
            Arm(
                id=values["v_id"],
                key=values["v_key"],
                name=values["v_name"],
                position=values["v_position"],
                incentive_key=values["i_key"],
                incentive=incentive,
                strategy=values["s_key"],
            )
        )
    return tuple(
        RunningExperiment(
            id=experiment.id,
            key=experiment.key,
            name=experiment.name,
            config=assignment_config(experiment),
            arms=tuple(arms),
        )
        for experiment, arms in experiments.values()
    )
