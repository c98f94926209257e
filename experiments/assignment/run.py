"""Pure experiment-run semantics: which variation (if any) a unit gets, and why not otherwise.

Layer: ``experiments.assignment`` (pure, no I/O; uses ``experiments.targeting``).

The order of checks follows GrowthBook's ``_run`` so that a GrowthBook SDK fed the same
configuration (see ``to_growthbook_experiment``) assigns identically:

1. fewer than two variations, or an experiment that is not running: not in;
2. a QA forced variation for this unit wins;
3. a unit without a usable hash attribute value is not in;
4. the global no-incentive holdout and the namespace slice (GrowthBook "filters");
5. the targeting condition;
6. the bucket (``bucket_hash``) against the bucket ranges (coverage and weights);
7. an experiment-wide forced variation applies only to units inside the coverage.

Sticky assignment lives in the database (the first recorded exposure wins); ramps only raise
coverage, which never moves an assigned unit (``ranges_keep_assignments``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from experiments.assignment.buckets import (
    BucketRange,
    bucket_ranges,
    choose_variation,
    in_range,
    validate_namespace_range,
)
from experiments.assignment.hashing import (
    DEFAULT_HASH_VERSION,
    SUPPORTED_HASH_VERSIONS,
    bucket_hash,
)
from experiments.targeting import eval_condition, validate_condition
from experiments.targeting.js_values import is_number, js_number_to_string

GLOBAL_HOLDOUT_SEED = "liftlab-global-holdout"


class Reason(StrEnum):
    """Why a unit got (or did not get) a variation."""

    ASSIGNED = "assigned"
    FORCED = "forced"
    NOT_RUNNING = "not_running"
    MISSING_ID = "missing_id"
    HOLDOUT = "holdout"
    NAMESPACE = "namespace"
    CONDITION = "condition"
    COVERAGE = "coverage"
    INVALID_HASH_VERSION = "invalid_hash_version"
    INVALID_FORCE = "invalid_force"


@dataclass(frozen=True)
class Namespace:
    """A slice ``[start, end)`` of a mutual-exclusion namespace."""

    id: str
    start: float
    end: float

    def as_tuple(self) -> tuple[str, float, float]:
        return (self.id, self.start, self.end)


@dataclass(frozen=True)
class HashFilter:
    """Keep only units whose bucket under ``seed`` falls in one of ``ranges`` (GrowthBook filter)."""

    seed: str
    ranges: tuple[BucketRange, ...]
    attribute: str = "id"
    hash_version: int = 2


@dataclass(frozen=True)
class GlobalHoldout:
    """Units whose bucket under ``seed`` is in ``[start, end)`` get no incentive from any experiment."""

    start: float = 0.0
    end: float = 0.05
    seed: str = GLOBAL_HOLDOUT_SEED
    attribute: str = "id"
    hash_version: int = 2

    def as_filter(self) -> HashFilter:
        """The GrowthBook filter that keeps everyone outside the holdout."""
        kept = tuple(r for r in ((0.0, self.start), (self.end, 1.0)) if r[1] > r[0])
        return HashFilter(self.seed, kept, self.attribute, self.hash_version)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything assignment needs to know about one experiment."""

    key: str
    num_variations: int
    weights: tuple[float, ...] | None = None
    coverage: float = 1.0
    seed: str | None = None
    hash_version: int = DEFAULT_HASH_VERSION
    hash_attribute: str = "id"
    namespace: Namespace | None = None
    condition: Mapping[str, Any] | None = None
    running: bool = True
    forced_variations: Mapping[str, int] = field(default_factory=dict)
    force: int | None = None
    ranges: tuple[BucketRange, ...] | None = None
    filters: tuple[HashFilter, ...] = ()
    global_holdout: GlobalHoldout | None = None

    @property
    def hash_seed(self) -> str:
        return self.seed or self.key

    def effective_ranges(self) -> list[BucketRange]:
        """Explicit ranges when given, else GrowthBook's ranges from coverage and weights."""
        if self.ranges:
            return list(self.ranges)
        return bucket_ranges(self.num_variations, self.coverage, self.weights)

    def growthbook_filters(self) -> tuple[HashFilter, ...]:
        """The filters, holdout and namespace as GrowthBook filters (all must pass)."""
        extra: list[HashFilter] = []
        if self.global_holdout is not None:
            extra.append(self.global_holdout.as_filter())
        if self.namespace is not None:
            ns = self.namespace
            extra.append(HashFilter("__" + ns.id, ((ns.start, ns.end),), self.hash_attribute, 1))
        return (*self.filters, *extra)


@dataclass(frozen=True)
class Assignment:
    """The outcome for one unit: a variation index (None when not in) and the reason."""

    variation: int | None
    reason: Reason
    bucket: float | None = None

    @property
    def in_experiment(self) -> bool:
        return self.variation is not None

    @property
    def hash_used(self) -> bool:
        return self.reason is Reason.ASSIGNED


def hash_value(attributes: Mapping[str, Any], attribute: str) -> str:
    """The unit id to hash, formatted as GrowthBook does, or "" when unusable.

    Only non-empty strings and finite, non-zero numbers identify a unit (never booleans).
    """
    value: Any = attributes.get(attribute)
    if isinstance(value, str):
        return value
    if is_number(value) and value != 0:
        text = js_number_to_string(value)
        return "" if text in ("Infinity", "-Infinity", "NaN") else text
    return ""


def _filtered_out(filters: Sequence[HashFilter], attributes: Mapping[str, Any]) -> bool:
    for item in filters:
        unit = hash_value(attributes, item.attribute)
        if not unit:
            return True
        n = bucket_hash(item.seed, unit, item.hash_version)
        if n is None or not any(in_range(n, r) for r in item.ranges):
            return True
    return False


def in_global_holdout(holdout: GlobalHoldout, attributes: Mapping[str, Any]) -> bool:
    """Whether the unit sits in the no-incentive holdout (a unit without an id counts as held out)."""
    return _filtered_out((holdout.as_filter(),), attributes)


def run_experiment(
    config: ExperimentConfig,
    attributes: Mapping[str, Any],
    saved_groups: Mapping[str, Any] | None = None,
) -> Assignment:
    """The variation ``attributes``' unit gets in ``config``, or None with the reason."""
    n_variations = config.num_variations
    if n_variations < 2:
        return Assignment(None, Reason.NOT_RUNNING)
    unit = hash_value(attributes, config.hash_attribute)
    if unit and unit in config.forced_variations:
        forced = config.forced_variations[unit]
        if 0 <= forced < n_variations:
            return Assignment(forced, Reason.FORCED)
        return Assignment(None, Reason.INVALID_FORCE)
    if not config.running:
        return Assignment(None, Reason.NOT_RUNNING)
    if not unit:
        return Assignment(None, Reason.MISSING_ID)
    if config.global_holdout is not None and in_global_holdout(config.global_holdout, attributes):
        return Assignment(None, Reason.HOLDOUT)
    if config.filters and _filtered_out(config.filters, attributes):
        return Assignment(None, Reason.NAMESPACE)
    if config.namespace is not None and not _in_namespace(unit, config.namespace):
        return Assignment(None, Reason.NAMESPACE)
    if config.condition and not eval_condition(attributes, config.condition, saved_groups):
        return Assignment(None, Reason.CONDITION)
    bucket = bucket_hash(config.hash_seed, unit, config.hash_version)
    if bucket is None:
        return Assignment(None, Reason.INVALID_HASH_VERSION)
    chosen = choose_variation(bucket, config.effective_ranges())
    if chosen < 0:
        return Assignment(None, Reason.COVERAGE, bucket)
    if config.force is not None:
        if 0 <= config.force < n_variations:
            return Assignment(config.force, Reason.FORCED, bucket)
        return Assignment(None, Reason.INVALID_FORCE, bucket)
    return Assignment(chosen, Reason.ASSIGNED, bucket)


def _in_namespace(unit: str, namespace: Namespace) -> bool:
    n = bucket_hash("__" + namespace.id, unit, 1)
    return n is not None and namespace.start <= n < namespace.end


def validate_experiment(config: ExperimentConfig) -> None:
    """Raise ValueError naming the field and the fix for a configuration the admin must refuse."""
    if not config.key:
        raise ValueError("key must be a non-empty string, e.g. 'checkout-discount-2026'")
    if config.num_variations < 2:
        raise ValueError("num_variations must be at least 2 (control plus one treatment)")
    if config.hash_version not in SUPPORTED_HASH_VERSIONS:
        raise ValueError(
            f"hash_version must be one of {SUPPORTED_HASH_VERSIONS}; use {DEFAULT_HASH_VERSION}"
        )
    if not (math.isfinite(config.coverage) and 0 <= config.coverage <= 1):
        raise ValueError(f"coverage must be between 0 and 1, got {config.coverage}")
    if config.weights is not None:
        if len(config.weights) != config.num_variations:
            raise ValueError(
                f"weights needs one entry per variation ({config.num_variations}), "
                f"got {len(config.weights)}"
            )
        if any(not math.isfinite(w) or w < 0 for w in config.weights):
            raise ValueError("weights must be finite numbers >= 0")
        if abs(sum(config.weights) - 1) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {sum(config.weights)}")
    if config.namespace is not None:
        validate_namespace_range(config.namespace.start, config.namespace.end)
    for unit, forced in config.forced_variations.items():
        if not 0 <= forced < config.num_variations:
            raise ValueError(
                f"forced_variations[{unit!r}] = {forced} is not a variation index "
                f"(0..{config.num_variations - 1})"
            )
    if config.force is not None and not 0 <= config.force < config.num_variations:
        raise ValueError(
            f"force = {config.force} is not a variation index (0..{config.num_variations - 1})"
        )
    if config.condition is not None:
        validate_condition(config.condition)


def to_growthbook_experiment(
    config: ExperimentConfig, variations: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The experiment as a GrowthBook SDK experiment (or experiment-rule) payload.

    Any GrowthBook SDK running it assigns as ``run_experiment`` does. The holdout and the namespace
    travel as ``filters`` (GrowthBook ignores ``namespace`` once filters exist). Per-unit QA
    ``forced_variations`` have no GrowthBook equivalent and are left out.
    """
    payload: dict[str, Any] = {
        "key": config.key,
        "variations": list(variations)
        if variations is not None
        else list(range(config.num_variations)),
        "seed": config.hash_seed,
        "hashVersion": config.hash_version,
        "hashAttribute": config.hash_attribute,
        "coverage": config.coverage,
        "active": config.running,
    }
    if config.weights is not None:
        payload["weights"] = list(config.weights)
    if config.ranges:
        payload["ranges"] = [list(r) for r in config.ranges]
    if config.condition:
        payload["condition"] = dict(config.condition)
    if config.force is not None:
        payload["force"] = config.force
    filters = config.growthbook_filters()
    if filters:
        payload["filters"] = [
            {
                "seed": f.seed,
                "ranges": [list(r) for r in f.ranges],
                "attribute": f.attribute,
                "hashVersion": f.hash_version,
            }
            for f in filters
        ]
    return payload
