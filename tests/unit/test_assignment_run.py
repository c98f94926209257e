"""Run semantics: reasons, the global holdout, namespaces (mutual exclusion), ramps and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.assignment import (
    DEFAULT_HASH_VERSION,
    GLOBAL_HOLDOUT_SEED,
    ExperimentConfig,
    GlobalHoldout,
    Namespace,
    Reason,
    bucket_hash,
    bucket_hash_many,
    bucket_ranges,
    choose_variation_many,
    in_global_holdout,
    namespace_ranges_overlap,
    ranges_keep_assignments,
    run_experiment,
    validate_experiment,
    validate_namespace_range,
)

IDS = [f"user-{i}" for i in range(20000)]


def test_new_experiments_default_to_hash_version_2() -> None:
    assert DEFAULT_HASH_VERSION == 2
    assert ExperimentConfig(key="k", num_variations=2).hash_version == 2


def test_assigned_unit_gets_the_bucket_variation() -> None:
    config = ExperimentConfig(key="checkout", num_variations=3, seed="s1")
    bucket = bucket_hash("s1", "user-7", 2)
    assert bucket is not None
    result = run_experiment(config, {"id": "user-7"})
    assert result.reason is Reason.ASSIGNED and result.hash_used
    assert result.bucket == bucket
    assert result.variation == int(bucket * 3)  # equal thirds: [0, 1/3), [1/3, 2/3), [2/3, 1)


@pytest.mark.parametrize(
    ("config", "attributes", "reason"),
    [
        (
            ExperimentConfig(key="k", num_variations=2, running=False),
            {"id": "u1"},
            Reason.NOT_RUNNING,
        ),
        (ExperimentConfig(key="k", num_variations=1), {"id": "u1"}, Reason.NOT_RUNNING),
        (ExperimentConfig(key="k", num_variations=2), {"id": ""}, Reason.MISSING_ID),
        (ExperimentConfig(key="k", num_variations=2), {"id": True}, Reason.MISSING_ID),
        (ExperimentConfig(key="k", num_variations=2), {}, Reason.MISSING_ID),
        (ExperimentConfig(key="k", num_variations=2, coverage=0.0), {"id": "u1"}, Reason.COVERAGE),
        (
            ExperimentConfig(key="k", num_variations=2, condition={"country": "US"}),
            {"id": "u1", "country": "FR"},
            Reason.CONDITION,
        ),
        (
            ExperimentConfig(key="k", num_variations=2, global_holdout=GlobalHoldout(0.0, 1.0)),
            {"id": "u1"},
            Reason.HOLDOUT,
        ),
        (
            ExperimentConfig(key="k", num_variations=2, namespace=Namespace("n", 0.0, 0.0001)),
            {"id": "u1"},
            Reason.NAMESPACE,
        ),
        (
            ExperimentConfig(key="k", num_variations=2, hash_version=7),
            {"id": "u1"},
            Reason.INVALID_HASH_VERSION,
        ),
    ],
)
def test_reasons(config: ExperimentConfig, attributes: dict, reason: Reason) -> None:
    result = run_experiment(config, attributes)
    assert result.reason is reason
    assert result.variation is None and not result.in_experiment


def test_forced_variations_for_qa_win_over_everything_but_an_invalid_index() -> None:
    config = ExperimentConfig(
        key="k",
        num_variations=3,
        running=False,
        coverage=0.0,
        forced_variations={"qa-1": 2, "qa-bad": 5},
        global_holdout=GlobalHoldout(0.0, 1.0),
    )
    assert run_experiment(config, {"id": "qa-1"}).variation == 2
    assert run_experiment(config, {"id": "qa-1"}).reason is Reason.FORCED
    assert run_experiment(config, {"id": "qa-bad"}).reason is Reason.INVALID_FORCE
    assert run_experiment(config, {"id": "someone"}).reason is Reason.NOT_RUNNING


def test_experiment_force_applies_only_inside_coverage() -> None:
    config = ExperimentConfig(key="k", num_variations=2, force=1, coverage=0.5)
    results = [run_experiment(config, {"id": u}) for u in IDS[:2000]]
    assert {r.reason for r in results} == {Reason.FORCED, Reason.COVERAGE}
    assert all(r.variation == 1 for r in results if r.reason is Reason.FORCED)


def test_no_experiment_assigns_a_unit_of_the_global_holdout() -> None:
    ids = IDS[:8000]
    holdout = GlobalHoldout(0.0, 0.05)
    held = {u for u in ids if in_global_holdout(holdout, {"id": u})}
    # The holdout is its own hash: bucket under the fixed seed, independent of any experiment.
    assert held == {u for u in ids if bucket_hash(GLOBAL_HOLDOUT_SEED, u, 2) < 0.05}
    share = len(held) / len(ids)
    assert abs(share - 0.05) < 4 * np.sqrt(0.05 * 0.95 / len(ids))
    for index in range(3):
        config = ExperimentConfig(
            key=f"exp-{index}", num_variations=2 + index, coverage=1.0, global_holdout=holdout
        )
        outcome = {u: run_experiment(config, {"id": u}) for u in ids}
        assert all(outcome[u].reason is Reason.HOLDOUT for u in held)
        assert all(outcome[u].in_experiment for u in ids if u not in held)


def test_namespace_slices_are_mutually_exclusive() -> None:
    first = ExperimentConfig(key="a", num_variations=2, namespace=Namespace("pricing", 0.0, 0.5))
    second = ExperimentConfig(key="b", num_variations=2, namespace=Namespace("pricing", 0.5, 1.0))
    in_first = {u for u in IDS if run_experiment(first, {"id": u}).in_experiment}
    in_second = {u for u in IDS if run_experiment(second, {"id": u}).in_experiment}
    assert not in_first & in_second
    assert in_first | in_second == set(IDS)
    assert 0.45 < len(in_first) / len(IDS) < 0.55


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ((0.0, 0.5), (0.5, 1.0), False),
        ((0.0, 0.5), (0.4, 0.6), True),
        ((0.2, 0.3), (0.0, 1.0), True),
        ((0.3, 0.3), (0.0, 1.0), False),
        ((0.6, 0.9), (0.1, 0.6), False),
    ],
)
def test_namespace_ranges_overlap(first: tuple, second: tuple, overlap: bool) -> None:
    assert namespace_ranges_overlap(first, second) is overlap
    assert namespace_ranges_overlap(second, first) is overlap


@pytest.mark.parametrize(("start", "end"), [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.1), (0.7, 0.2)])
def test_validate_namespace_range_refuses_bad_slices(start: float, end: float) -> None:
    with pytest.raises(ValueError, match="namespace range"):
        validate_namespace_range(start, end)


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=2, max_size=5),
    c1=st.floats(min_value=0.0, max_value=1.0),
    c2=st.floats(min_value=0.0, max_value=1.0),
)
def test_raising_coverage_keeps_every_assignment(
    weights: list[float], c1: float, c2: float
) -> None:
    low, high = sorted((c1, c2))
    total = sum(weights)
    w = [x / total for x in weights]
    assert ranges_keep_assignments(bucket_ranges(len(w), low, w), bucket_ranges(len(w), high, w))


@pytest.mark.parametrize("version", [1, 2])
def test_ramp_moves_nobody_on_real_ids(version: int) -> None:
    buckets = bucket_hash_many("ramp", IDS, version)
    assert buckets is not None
    weights = [0.5, 0.3, 0.2]
    previous = None
    for coverage in (0.05, 0.1, 0.25, 0.5, 1.0):
        chosen = choose_variation_many(buckets, bucket_ranges(3, coverage, weights))
        if previous is not None:
            was_in = previous >= 0
            assert np.array_equal(chosen[was_in], previous[was_in])
            assert (chosen >= 0).sum() >= was_in.sum()
        previous = chosen


def test_changing_weights_is_detected_as_moving_users() -> None:
    old = bucket_ranges(2, 1.0, [0.5, 0.5])
    new = bucket_ranges(2, 1.0, [0.2, 0.8])
    assert not ranges_keep_assignments(old, new)
    buckets = bucket_hash_many("w", IDS, 2)
    assert buckets is not None
    moved = choose_variation_many(buckets, old) != choose_variation_many(buckets, new)
    assert moved.any()


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (ExperimentConfig(key="", num_variations=2), "key"),
        (ExperimentConfig(key="k", num_variations=1), "num_variations"),
        (ExperimentConfig(key="k", num_variations=2, hash_version=3), "hash_version"),
        (ExperimentConfig(key="k", num_variations=2, coverage=1.5), "coverage"),
        (ExperimentConfig(key="k", num_variations=2, weights=(0.5,)), "weights"),
        (ExperimentConfig(key="k", num_variations=2, weights=(0.9, 0.3)), "weights"),
        (
            ExperimentConfig(key="k", num_variations=2, namespace=Namespace("n", 0.6, 0.2)),
            "namespace",
        ),
        (
            ExperimentConfig(key="k", num_variations=2, forced_variations={"u": 2}),
            "forced_variations",
        ),
        (ExperimentConfig(key="k", num_variations=2, force=-1), "force"),
        (ExperimentConfig(key="k", num_variations=2, condition={"a": {"$bogus": 1}}), "$bogus"),
    ],
)
def test_validate_experiment_names_the_field(config: ExperimentConfig, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("$", r"\$")):
        validate_experiment(config)


def test_validate_experiment_accepts_a_sound_config() -> None:
    validate_experiment(
        ExperimentConfig(
            key="k",
            num_variations=3,
            weights=(0.2, 0.3, 0.5),
            coverage=0.4,
            namespace=Namespace("n", 0.0, 0.5),
            condition={"country": {"$in": ["US", "CA"]}},
            forced_variations={"qa": 1},
        )
    )
