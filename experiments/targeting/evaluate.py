"""Evaluate GrowthBook's Mongo-style targeting conditions against a unit's attributes.

Layer: ``experiments.targeting`` (pure, standard library only).

Semantics follow GrowthBook's JavaScript SDK (``mongrule.ts``), the implementation its conformance
cases come from, including its JavaScript coercions: ``{"n": {"$gt": 5}}`` matches ``{"n": "8"}``,
a missing attribute compares as ``null`` (``0`` for ``$lt``/``$gt``), ``$elemMatch`` skips falsy
elements. The ``growthbook`` Python SDK 4.0 is stricter on mixed-type comparisons (it fails three
of the JS conformance cases); where the two differ we match JavaScript.
"""

from __future__ import annotations

import functools
import operator as op
import re
from collections.abc import Mapping
from typing import Any

from experiments.targeting.js_values import (
    is_array,
    is_number,
    js_compare,
    js_get,
    js_json_stringify,
    js_object_keys,
    js_same_value_zero,
    js_strict_equal,
    js_to_number,
    js_to_string,
    js_truthy,
    js_type,
    utf16_bytes,
)

SavedGroups = Mapping[str, Any]

_VERSION_STRIP = re.compile(r"^v|\+[^\n\r\u2028\u2029]*\Z")
_VERSION_SPLIT = re.compile(r"[-.]")
_DIGITS = re.compile(r"[0-9]+")


def eval_condition(
    attributes: Mapping[str, Any],
    condition: Mapping[str, Any],
    saved_groups: SavedGroups | None = None,
) -> bool:
    """Whether ``attributes`` satisfy ``condition`` (GrowthBook's ``evalCondition``).

    ``saved_groups`` maps a saved group id to its list of values, for ``$inGroup``/``$notInGroup``.
    """
    return _eval_condition(attributes, condition, saved_groups or {})


def get_path(attributes: Any, path: str) -> Any:
    """The value at a dotted path (``"father.age"``, ``"tags.0"``), or None when absent."""
    current = attributes
    for part in path.split("."):
        found, current = js_get(current, part)
        if not found:
            return None
    return current


def _entries(condition: Any) -> list[tuple[str, Any]]:
    if isinstance(condition, Mapping):
        return [(key, condition[key]) for key in js_object_keys(dict(condition))]
    if is_array(condition) or isinstance(condition, str):
        return [(str(i), item) for i, item in enumerate(condition)]
    return []


def _eval_condition(obj: Any, condition: Any, saved_groups: SavedGroups) -> bool:
    for key, value in _entries(condition):
        if key == "$or":
            if not _eval_or(obj, value, saved_groups):
                return False
        elif key == "$nor":
            if _eval_or(obj, value, saved_groups):
                return False
        elif key == "$and":
            if not _eval_and(obj, value, saved_groups):
                return False
        elif key == "$not":
            if _eval_condition(obj, value, saved_groups):
                return False
        elif not _eval_condition_value(value, get_path(obj, key), saved_groups):
            return False
    return True


def _eval_or(obj: Any, conditions: Any, saved_groups: SavedGroups) -> bool:
    # JS reads `conditions.length`: an empty list (or a non-list) passes.
    if not is_array(conditions) or len(conditions) == 0:
        return True
    return any(_eval_condition(obj, item, saved_groups) for item in conditions)


def _eval_and(obj: Any, conditions: Any, saved_groups: SavedGroups) -> bool:
    if not is_array(conditions):
        return True
    return all(_eval_condition(obj, item, saved_groups) for item in conditions)


def is_operator_object(value: Any) -> bool:
    """A non-empty object whose keys all start with ``$``."""
    keys = js_object_keys(value)
    return len(keys) > 0 and all(key.startswith("$") for key in keys)


def _eval_condition_value(
    condition: Any, value: Any, saved_groups: SavedGroups, insensitive: bool = False
) -> bool:
    if isinstance(condition, str):
        if insensitive:
            return js_to_string(value).lower() == condition.lower()
        return js_to_string(value) == condition
    if isinstance(condition, bool):
        return value is not None and js_truthy(value) == condition
    if is_number(condition):
        return js_to_number(value) == condition
    if condition is None:
        return value is None
    if is_array(condition) or not is_operator_object(condition):
        return js_json_stringify(value) == js_json_stringify(condition)
    return all(
        _eval_operator(operator, value, expected, saved_groups)
        for operator, expected in _entries(condition)
    )


def _is_in(actual: Any, expected: list[Any], insensitive: bool = False) -> bool:
    def fold(item: Any) -> Any:
        return item.lower() if insensitive and isinstance(item, str) else item

    candidates = [fold(item) for item in expected]
    items = actual if is_array(actual) else [actual]
    return any(js_same_value_zero(fold(item), c) for item in items for c in candidates)


def _is_in_all(
    actual: Any, expected: list[Any], saved_groups: SavedGroups, insensitive: bool
) -> bool:
    if not is_array(actual):
        return False
    return all(
        any(_eval_condition_value(cond, item, saved_groups, insensitive) for item in actual)
        for cond in expected
    )


def _elem_match(actual: Any, expected: Any, saved_groups: SavedGroups) -> bool:
    if not is_array(actual):
        return False
    on_value = is_operator_object(expected)
    for item in actual:
        # JS tests `actual[i] && check(actual[i])`: falsy elements (0, "", false, null) never match.
        if not js_truthy(item):
            continue
        if on_value:
            if _eval_condition_value(expected, item, saved_groups):
                return True
        elif _eval_condition(item, expected, saved_groups):
            return True
    return False


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str, insensitive: bool) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.IGNORECASE if insensitive else 0)
    except (re.error, RecursionError, OverflowError):
        return None


def _regex_test(pattern: Any, actual: Any, insensitive: bool) -> bool:
    if not isinstance(pattern, str):
        return False
    compiled = _compile(pattern, insensitive)
    # RegExp.test converts its argument with String(): a missing attribute is the text "null".
    return compiled is not None and compiled.search(js_to_string(actual)) is not None


def padded_version_string(value: Any) -> str:
    """A version string that orders correctly under plain string comparison.

    ``"v1.2.3-rc.1+build"`` → parts ``1, 2, 3, rc, 1``; a release gets a ``~`` part so that it
    sorts after its pre-releases; numeric parts are left-padded to 5 characters.
    """
    if is_number(value):
        value = js_to_string(value)
    if not value or not isinstance(value, str):
        value = "0"
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(part.rjust(5, " ") if _DIGITS.fullmatch(part) else part for part in parts)


def _version_compare(operator: str, actual: Any, expected: Any) -> bool:
    left = padded_version_string(actual)
    right = padded_version_string(expected)
    if left.isascii() and right.isascii():
        return _ORDERED[operator](left, right)
    return _ORDERED[operator](utf16_bytes(left), utf16_bytes(right))


_ORDERED = {
    "$veq": op.eq,
    "$vne": op.ne,
    "$vgt": op.gt,
    "$vgte": op.ge,
    "$vlt": op.lt,
    "$vlte": op.le,
}


_COMPARISONS = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_VERSION_OPERATORS = ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte")


def _eval_operator(operator: str, actual: Any, expected: Any, saved_groups: SavedGroups) -> bool:
    if operator in _VERSION_OPERATORS:
        return _version_compare(operator, actual, expected)
    if operator == "$eq":
        return js_strict_equal(actual, expected)
    if operator == "$ne":
        return not js_strict_equal(actual, expected)
    if operator in _COMPARISONS:
        return js_compare(_COMPARISONS[operator], actual, expected)
    if operator == "$exists":
        return actual is not None if js_truthy(expected) else actual is None
    if operator in ("$in", "$nin", "$ini", "$nini"):
        if not is_array(expected):
            return False
        found = _is_in(actual, list(expected), insensitive=operator.endswith("i"))
        return found if operator in ("$in", "$ini") else not found
    if operator in ("$inGroup", "$notInGroup"):
        group = saved_groups.get(expected) if isinstance(expected, str) else None
        found = _is_in(actual, list(group) if group is not None and is_array(group) else [])
        return found if operator == "$inGroup" else not found
    if operator == "$not":
        return not _eval_condition_value(expected, actual, saved_groups)
    if operator == "$size":
        if not is_array(actual):
            return False
        return _eval_condition_value(expected, len(actual), saved_groups)
    if operator == "$elemMatch":
        return _elem_match(actual, expected, saved_groups)
    if operator in ("$all", "$alli"):
        if not is_array(expected):
            return False
        return _is_in_all(actual, list(expected), saved_groups, insensitive=operator == "$alli")
    if operator in ("$regex", "$regexi"):
        return _regex_test(expected, actual, insensitive=operator == "$regexi")
    if operator == "$type":
        return js_type(actual) == expected
    # Unknown operators never match (the JS SDK logs them); validate_condition refuses them.
    return False
