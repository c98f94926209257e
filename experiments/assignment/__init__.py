"""Deterministic, GrowthBook-compatible assignment: hashing, bucket ranges, namespaces, run semantics.

Layer: ``experiments.assignment`` (pure core: numpy and the standard library, no I/O).

The scalar functions are bit-identical to GrowthBook's SDKs (test vectors in
``../shared/data/growthbook/cases.json``); the ``*_many`` forms do the same over numpy arrays of
unit ids for scoring millions of users at once. Bucketing is versioned: a change is a new hash
version, never an edit.
"""

from experiments.assignment.buckets import (
    BucketRange,
    bucket_ranges,
    choose_variation,
    choose_variation_many,
    equal_weights,
    in_namespace,
    in_namespace_many,
    namespace_ranges_overlap,
    ranges_keep_assignments,
    validate_namespace_range,
    weights_are_valid,
)
from experiments.assignment.hashing import (
    DEFAULT_HASH_VERSION,
    SUPPORTED_HASH_VERSIONS,
    bucket_hash,
    bucket_hash_many,
    fnv1a32,
)
from experiments.assignment.run import (
    GLOBAL_HOLDOUT_SEED,
    Assignment,
    ExperimentConfig,
    GlobalHoldout,
    HashFilter,
    Namespace,
    Reason,
    in_global_holdout,
    run_experiment,
    to_growthbook_experiment,
    validate_experiment,
)

__all__ = [
    "DEFAULT_HASH_VERSION",
    "GLOBAL_HOLDOUT_SEED",
    "SUPPORTED_HASH_VERSIONS",
    "Assignment",
    "BucketRange",
    "ExperimentConfig",
    "GlobalHoldout",
    "HashFilter",
    "Namespace",
    "Reason",
    "bucket_hash",
    "bucket_hash_many",
    "bucket_ranges",
    "choose_variation",
    "choose_variation_many",
    "equal_weights",
    "fnv1a32",
    "in_global_holdout",
    "in_namespace",
    "in_namespace_many",
    "namespace_ranges_overlap",
    "ranges_keep_assignments",
    "run_experiment",
    "to_growthbook_experiment",
    "validate_experiment",
    "validate_namespace_range",
    "weights_are_valid",
]
