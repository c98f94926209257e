"""liftlab's assignment against the ``growthbook`` Python SDK from PyPI on thousands of random inputs.

The SDK is an independent implementation of the same spec: hashing, bucket ranges, variation
choice, namespaces, equal weights, targeting conditions (on inputs where the JS and Python SDKs
agree, see ``experiments.targeting.evaluate``), and whole experiment runs fed our GrowthBook payload.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

gb_core = pytest.importorskip("growthbook.core")
gb = pytest.importorskip("growthbook")

from experiments.assignment import (  # noqa: E402
    ExperimentConfig,
    GlobalHoldout,
    Namespace,
    bucket_hash,
    bucket_hash_many,
    bucket_ranges,
    choose_variation,
    choose_variation_many,
    equal_weights,
    in_namespace,
    run_experiment,
    to_growthbook_experiment,
)
from experiments.targeting import eval_condition  # noqa: E402

ALPHABET = list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.:@ ") + [
    "é", "ñ", "ü", "ß", "Ω", "中", "文", "\u00a0", "😀", "👍", "🏽", "𝄞", "\ud800",
]  # fmt: skip


def random_strings(rng: np.random.Generator, n: int, max_len: int = 24) -> list[str]:
    lengths = rng.integers(0, max_len + 1, n)
    return ["".join(rng.choice(ALPHABET, size=k)) for k in lengths]


def test_hash_matches_sdk_on_random_strings() -> None:
    rng = np.random.default_rng(11)
    seeds = random_strings(rng, 40, 12)
    values = random_strings(rng, 3000)
    for version in (1, 2, 3):
        for seed in seeds[:8]:
            expected = [gb_core.gbhash(seed, v, version) for v in values]
            assert [bucket_hash(seed, v, version) for v in values] == expected
            many = bucket_hash_many(seed, np.array(values), version)
            if version == 3:
                assert many is None and set(expected) == {None}
            else:
                assert many is not None and many.tolist() == expected
    for seed, value in zip(seeds, values, strict=False):
        assert bucket_hash(seed, value, 2) == gb_core.gbhash(seed, value, 2)


def random_weights(rng: np.random.Generator, n: int) -> list[float] | None:
    kind = rng.integers(0, 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.dirichlet(np.ones(max(n, 1))).tolist()[:n]
    if kind == 2:
        return rng.uniform(-0.5, 1.0, max(n + rng.integers(-1, 2), 0)).tolist()
    if kind == 3:  # sums within GrowthBook's 0.99..1.01 tolerance, or just outside it
        w = rng.dirichlet(np.ones(max(n, 1))) * rng.choice([0.985, 0.995, 1.005, 1.015])
        return w.tolist()[:n]
    return [round(x, 2) for x in rng.dirichlet(np.ones(max(n, 1))).tolist()[:n]]


def test_bucket_ranges_and_choice_match_sdk() -> None:
    rng = np.random.default_rng(12)
    for _ in range(3000):
        n = int(rng.integers(0, 7))
        coverage = float(rng.choice([rng.uniform(-0.3, 1.3), 1.0, 0.0, rng.uniform(0, 1)]))
        weights = random_weights(rng, n)
        expected = gb_core.getBucketRanges(n, coverage, weights)
        got = bucket_ranges(n, coverage, weights)
        assert got == expected
        buckets = np.round(rng.uniform(0, 1, 20), 4)
        choices = [gb_core.chooseVariation(float(b), expected) for b in buckets]
        assert [choose_variation(float(b), got) for b in buckets] == choices
        assert choose_variation_many(buckets, got).tolist() == choices


def test_namespaces_and_equal_weights_match_sdk() -> None:
    rng = np.random.default_rng(13)
    ids = random_strings(rng, 3000)
    names = random_strings(rng, 30, 10)
    for i, unit in enumerate(ids):
        start = float(rng.uniform(0, 1))
        namespace = (names[i % len(names)], start, float(rng.uniform(start, 1)))
        assert in_namespace(unit, namespace) is gb_core.inNamespace(unit, namespace)
    for n in range(-2, 40):
        assert equal_weights(n) == gb_core.getEqualWeights(n)


# Typed attributes: the JS and Python SDKs agree whenever a condition compares like with like.
COUNTRIES = ["US", "us", "CA", "FR", "DE", "JP", "BR"]
TAGS = ["vip", "new", "churned", "mobile", "VIP", "app"]


def random_attributes(rng: np.random.Generator) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "id": f"u{rng.integers(0, 10**6)}",
        "country": str(rng.choice(COUNTRIES)),
        "age": int(rng.integers(13, 90)),
        "score": float(np.round(rng.uniform(0, 100), 2)),
        "premium": bool(rng.integers(0, 2)),
        "tags": [str(t) for t in rng.choice(TAGS, size=rng.integers(0, 4), replace=False)],
        "version": f"{rng.integers(0, 3)}.{rng.integers(0, 12)}.{rng.integers(0, 5)}"
        + str(rng.choice(["", "", "-beta.1", "-rc.2", "+build.7"])),
        "address": {
            "city": str(rng.choice(["Paris", "Lyon", "Tokyo"])),
            "zip": str(rng.integers(10000, 99999)),
        },
    }
    if rng.integers(0, 3) == 0:
        attributes["coupon"] = str(rng.choice(["SAVE10", "FREESHIP"]))
    return attributes


def random_leaf(rng: np.random.Generator) -> dict[str, Any]:
    kind = int(rng.integers(0, 14))
    age = int(rng.integers(13, 90))
    if kind == 0:
        return {"country": str(rng.choice(COUNTRIES))}
    if kind == 1:
        op = str(rng.choice(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]))
        return {"age": {op: age}}
    if kind == 2:
        return {"score": {"$gt": float(rng.uniform(0, 50)), "$lte": float(rng.uniform(50, 100))}}
    if kind == 3:
        op = str(rng.choice(["$in", "$nin", "$ini", "$nini"]))
        return {"country": {op: [str(c) for c in rng.choice(COUNTRIES, size=2, replace=False)]}}
    if kind == 4:
        op = str(rng.choice(["$in", "$nin", "$all", "$alli"]))
        return {"tags": {op: [str(t) for t in rng.choice(TAGS, size=2, replace=False)]}}
    if kind == 5:
        return {"tags": {"$elemMatch": {"$eq": str(rng.choice(TAGS))}}}
    if kind == 6:
        return {"tags": {"$size": int(rng.integers(0, 4))}}
    if kind == 7:
        op = str(rng.choice(["$vgt", "$vgte", "$vlt", "$vlte", "$veq", "$vne"]))
        return {"version": {op: f"{rng.integers(0, 3)}.{rng.integers(0, 12)}.0"}}
    if kind == 8:
        return {"coupon": {"$exists": bool(rng.integers(0, 2))}}
    if kind == 9:
        return {"address.city": {"$regex": str(rng.choice(["^P", "o$", "(Lyon|Tokyo)", "ar"]))}}
    if kind == 10:
        return {"premium": bool(rng.integers(0, 2))}
    if kind == 11:
        return {"country": {"$type": str(rng.choice(["string", "number", "array"]))}}
    if kind == 12:
        return {"age": {"$not": {"$gte": age}}}
    return {"address.zip": {"$regexi": str(rng.choice(["^7", "5$", "1"]))}}


def random_condition(rng: np.random.Generator, depth: int = 0) -> dict[str, Any]:
    roll = int(rng.integers(0, 6)) if depth < 2 else 0
    if roll == 0 or roll == 1:
        return random_leaf(rng)
    if roll == 2:
        return {**random_leaf(rng), **random_leaf(rng)}
    children = [random_condition(rng, depth + 1) for _ in range(int(rng.integers(1, 4)))]
    if roll == 5:
        return {"$not": children[0]}
    return {str(rng.choice(["$and", "$or", "$nor"])): children}


def test_eval_condition_matches_sdk_on_random_typed_conditions() -> None:
    rng = np.random.default_rng(14)
    outcomes = []
    for _ in range(3000):
        attributes = random_attributes(rng)
        condition = random_condition(rng)
        expected = gb_core.evalCondition(attributes, condition)
        assert eval_condition(attributes, condition) is expected, (condition, attributes)
        outcomes.append(expected)
    # Both outcomes are well represented, so the comparison is not vacuous.
    assert 0.2 < np.mean(outcomes) < 0.8


def random_config(rng: np.random.Generator, index: int) -> ExperimentConfig:
    n = int(rng.integers(2, 5))
    return ExperimentConfig(
        key=f"exp-{index}",
        num_variations=n,
        weights=tuple(rng.dirichlet(np.ones(n)).tolist()) if rng.integers(0, 2) else None,
        coverage=float(rng.choice([1.0, rng.uniform(0.1, 1.0)])),
        seed=f"seed-{index}" if rng.integers(0, 2) else None,
        hash_version=int(rng.choice([1, 2])),
        namespace=Namespace("checkout", 0.2, 0.9) if rng.integers(0, 2) else None,
        condition={"country": {"$in": ["US", "CA", "FR"]}} if rng.integers(0, 2) else None,
        global_holdout=GlobalHoldout(0.0, 0.05) if rng.integers(0, 2) else None,
    )


def test_sdk_fed_our_payload_assigns_like_run_experiment() -> None:
    rng = np.random.default_rng(15)
    users = [random_attributes(rng) for _ in range(2000)]
    client = gb.GrowthBook(attributes={})
    try:
        for index in range(4):
            config = random_config(rng, index)
            experiment = gb.Experiment(**to_growthbook_experiment(config))
            in_count = 0
            for attributes in users:
                client.set_attributes(attributes)
                theirs = client.run(experiment)
                ours = run_experiment(config, attributes)
                assert (ours.variation if ours.in_experiment else None) == (
                    theirs.variationId if theirs.inExperiment else None
                ), (config, attributes, ours)
                in_count += ours.in_experiment
            assert in_count > 0
    finally:
        client.destroy()


def test_holdout_payload_excludes_exactly_the_holdout() -> None:
    holdout = GlobalHoldout(0.0, 0.1)
    config = ExperimentConfig(key="k", num_variations=2, global_holdout=holdout)
    payload = to_growthbook_experiment(config)
    (holdout_filter,) = payload["filters"]
    assert holdout_filter["seed"] == "liftlab-global-holdout"
    assert holdout_filter["ranges"] == [[0.1, 1.0]]
    assert math.isclose(sum(r[1] - r[0] for r in holdout_filter["ranges"]), 0.9)
