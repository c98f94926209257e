"""Targeting: JavaScript coercions the GrowthBook spec relies on, dotted paths, and validation errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.targeting import ConditionError, eval_condition, get_path, validate_condition
from experiments.targeting.js_values import (
    js_compare,
    js_json_stringify,
    js_number_to_string,
    js_to_number,
    js_to_string,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # Values from the ECMAScript Number::toString algorithm (what node prints for String(x)).
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (2**53 + 1, "9007199254740992"),
        (math.inf, "Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_js_number_to_string(value: float, text: str) -> None:
    assert js_number_to_string(value) == text


def test_js_number_to_string_matches_growthbook_sdk_on_random_doubles() -> None:
    gb_core = pytest.importorskip("growthbook.core")
    rng = np.random.default_rng(21)
    values = np.concatenate(
        [
            rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000),
            rng.integers(-(10**6), 10**6, 500),
        ]
    )
    for value in values.tolist():
        assert js_number_to_string(value) == gb_core._js_number_to_string(value)


@pytest.mark.parametrize(
    ("value", "number"),
    [(" 12 ", 12.0), ("0x1A", 26.0), ("1e3", 1000.0), ("", 0.0), ("-Infinity", -math.inf),
     (None, 0.0), (True, 1.0), ([5], 5.0), ([], 0.0), ("1_000", math.nan), ("abc", math.nan),
     ({"a": 1}, math.nan)],
)  # fmt: skip
def test_js_to_number(value: object, number: float) -> None:
    got = js_to_number(value)
    assert (math.isnan(got) and math.isnan(number)) or got == number


def test_js_to_string_and_stringify() -> None:
    assert js_to_string(None) == "null"
    assert js_to_string([1, None, "a", [2, 3]]) == "1,,a,2,3"
    assert js_to_string({"a": 1}) == "[object Object]"
    assert (
        js_json_stringify({"b": 1.0, "2": [True, None], "1": "x"})
        == '{"1":"x","2":[true,null],"b":1}'
    )


def test_js_relational_comparisons() -> None:
    assert js_compare("<", "10", "9")  # two strings compare as text
    assert js_compare(">", "10", 9)  # a number and a string compare as numbers
    assert js_compare(">", None, -1)  # null is 0
    assert not js_compare("<", "abc", 5) and not js_compare(">=", "abc", 5)  # NaN: all false
    assert js_compare("<=", 3, 3.0)
    assert js_compare("<", "Z", "a") and js_compare("<", "\uffff", "😀") is False


@pytest.mark.parametrize(
    ("condition", "attributes", "expected"),
    [
        # JavaScript coercions the Python SDK 4.0 does not apply.
        ({"n": "1"}, {"n": 1}, True),
        ({"n": 1}, {"n": "1"}, True),
        ({"n": 0}, {}, True),  # a missing attribute is null, and null * 1 is 0
        ({"n": {"$lt": 1}}, {}, True),  # null < 1 holds too
        ({"n": None}, {"n": 0}, False),
        ({"flag": True}, {"flag": "yes"}, True),
        ({"flag": False}, {"flag": None}, False),
        ({"tags": {"$elemMatch": {"$eq": 0}}}, {"tags": [0, 1]}, False),  # falsy items skipped
        ({"a": {"x": 1.0}}, {"a": {"x": 1}}, True),
        ({"a": {}}, {"a": {}}, True),
        ({"a": {}}, {"a": {"k": 1}}, False),
        ({"name": {"$regex": "^nu"}}, {}, True),  # RegExp.test(null) tests the text "null"
        ({"tags.0": "x"}, {"tags": ["x", "y"]}, True),
        ({"tags.length": 2}, {"tags": ["x", "y"]}, True),
        ({"$not": {"a": 1}, "b": 2}, {"a": 2, "b": 2}, True),
        ({"v": {"$vgt": "1.0.0"}}, {"v": 2}, True),
        ({"e": {"$eq": [1]}}, {"e": [1]}, False),  # === on arrays compares references
    ],
)
def test_eval_condition_follows_javascript(
    condition: dict, attributes: dict, expected: bool
) -> None:
    assert eval_condition(attributes, condition) is expected


def test_get_path() -> None:
    attributes = {"user": {"address": {"city": "Paris"}, "tags": ["a"]}, "n": None}
    assert get_path(attributes, "user.address.city") == "Paris"
    assert get_path(attributes, "user.tags.0") == "a"
    assert get_path(attributes, "user.tags.1") is None
    assert get_path(attributes, "user.address.city.x") is None
    assert get_path(attributes, "n.x") is None


@pytest.mark.parametrize(
    "condition",
    [
        {},
        {"country": "US", "age": {"$gte": 18, "$lt": 65}},
        {"$or": [{"tags": {"$elemMatch": {"$in": ["vip"]}}}, {"$not": {"premium": True}}]},
        {"items": {"$elemMatch": {"sku": {"$regex": "^A"}, "qty": {"$gt": 1}}}},
        {"tags": {"$size": {"$gte": 2}}, "version": {"$vgte": "2.1.0"}},
        {"tags": {"$all": ["a", {"$regex": "^b"}]}, "meta": {"k": [1, 2]}},
        {"id": {"$inGroup": "beta"}},
    ],
)
def test_validate_condition_accepts_well_formed_conditions(condition: dict) -> None:
    validate_condition(condition, saved_groups={"beta": ["u1"]})


@pytest.mark.parametrize(
    ("condition", "fragments"),
    [
        ({"name": {"$regx": "hello"}}, ["name.$regx", "unknown operator '$regx'"]),
        ({"$and": [{"a": 1}, {"b": {"$in": 3}}]}, ["$and[1].b.$in", "needs a list"]),
        ({"name": {"$regex": "([a-"}}, ["name.$regex", "invalid regular expression"]),
        ({"$xor": []}, ["unknown logical operator '$xor'"]),
        ({"a": {"$or": [{"b": 1}]}}, ["a.$or", "logical operators go at the top"]),
        ({"a": {"$gt": 1, "b": 2}}, ["mixes operators"]),
        ({"a": {"$exists": "yes"}}, ["a.$exists", "true or false"]),
        ({"a": {"$type": "int"}}, ["a.$type", "string, number"]),
        ({"a": {"$eq": [1, 2]}}, ["a.$eq", "==="]),
        ({"a": {"$vgt": 3}}, ["a.$vgt", "version string"]),
        ({"a..b": 1}, ["'a..b'", "empty part"]),
        ({"a": {"$size": -1}}, ["a.$size"]),
        ({"a": {"$elemMatch": {"b": {"$nope": 1}}}}, ["a.$elemMatch.b.$nope"]),
        ({"a": {"$inGroup": "missing"}}, ["a.$inGroup", "unknown saved group 'missing'"]),
        ({"a": {"$gt": math.nan}}, ["a.$gt"]),
        ({"a": {1, 2}}, ["set is not a JSON value"]),
        (["a"], ["must be an object"]),
    ],
)
def test_validate_condition_names_the_operator_and_path(
    condition: object, fragments: list[str]
) -> None:
    with pytest.raises(ConditionError) as info:
        validate_condition(condition, saved_groups={"beta": []})
    assert isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value)
