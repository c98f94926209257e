"""Check a targeting condition before it is saved, naming the bad operator and path for the admin.

Layer: ``experiments.targeting`` (pure, standard library only).

The evaluator is forgiving the way GrowthBook's SDKs are (an unknown operator simply never
matches), so a typo would silently exclude everyone. ``validate_condition`` refuses such a
condition up front with a message that says where it is and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from experiments.targeting.evaluate import SavedGroups, is_operator_object
from experiments.targeting.js_values import is_array, is_number

LOGICAL_OPERATORS = ("$and", "$or", "$nor", "$not")
VALUE_OPERATORS = (
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte",
    "$in", "$nin", "$ini", "$nini", "$all", "$alli",
    "$exists", "$regex", "$regexi", "$type", "$size", "$elemMatch", "$not",
    "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte",
    "$inGroup", "$notInGroup",
)  # fmt: skip
TYPE_NAMES = ("string", "number", "boolean", "object", "array", "null")


class ConditionError(ValueError):
    """A targeting condition that cannot be saved; ``path`` says where the problem is."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"condition at {path or '(top level)'}: {message}")


def validate_condition(condition: Any, saved_groups: SavedGroups | None = None) -> None:
    """Raise ``ConditionError`` (a ValueError) unless ``condition`` is well formed.

    With ``saved_groups``, ``$inGroup``/``$notInGroup`` must name a known group.
    """
    _check_condition(condition, "", saved_groups)


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _check_json(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str) or is_number(value):
        if isinstance(value, float) and value != value:
            raise ConditionError(path, "NaN is not a JSON value; use a number or null")
        return
    if is_array(value):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConditionError(path, f"object key {key!r} must be a string")
            _check_json(item, _join(path, key))
        return
    raise ConditionError(path, f"{type(value).__name__} is not a JSON value")


def _check_condition(condition: Any, path: str, saved_groups: SavedGroups | None) -> None:
    if not isinstance(condition, Mapping):
        raise ConditionError(
            path, f'a condition must be an object such as {{"country": "US"}}, got {condition!r}'
        )
    for key, value in condition.items():
        if not isinstance(key, str):
            raise ConditionError(path, f"key {key!r} must be a string attribute path or operator")
        if key in ("$and", "$or", "$nor"):
            if not is_array(value):
                raise ConditionError(_join(path, key), "needs a list of conditions")
            for i, item in enumerate(value):
                _check_condition(item, f"{_join(path, key)}[{i}]", saved_groups)
        elif key == "$not":
            _check_condition(value, _join(path, key), saved_groups)
        elif key.startswith("$"):
            raise ConditionError(
                path,
                f"unknown logical operator {key!r}; use one of {', '.join(LOGICAL_OPERATORS)}, "
                'or put a value operator under an attribute: {"age": {"$gt": 18}}',
            )
        else:
            if key == "" or "" in key.split("."):
                raise ConditionError(
                    path, f'attribute path {key!r} has an empty part; write it like "user.age"'
                )
            _check_value(value, _join(path, key), saved_groups)


def _check_value(value: Any, path: str, saved_groups: SavedGroups | None) -> None:
    if isinstance(value, Mapping) and value and not is_operator_object(value):
        dollar = [k for k in value if isinstance(k, str) and k.startswith("$")]
        if dollar:
            raise ConditionError(
                path,
                f"mixes operators ({', '.join(dollar)}) with plain keys; an object is either all "
                "operators or a literal value to compare with",
            )
    if not isinstance(value, Mapping) or not is_operator_object(value):
        _check_json(value, path)
        return
    for operator, argument in value.items():
        _check_operator(operator, argument, _join(path, operator), saved_groups)


def _check_operator(
    operator: str, argument: Any, path: str, saved_groups: SavedGroups | None
) -> None:
    if operator not in VALUE_OPERATORS:
        hint = (
            " (logical operators go at the top of a condition)"
            if operator in LOGICAL_OPERATORS
            else ""
        )
        raise ConditionError(
            path,
            f"unknown operator {operator!r}{hint}; known operators: {', '.join(VALUE_OPERATORS)}",
        )
    if operator not in ("$not", "$elemMatch", "$size", "$all", "$alli"):
        _check_json(argument, path)
    if operator in ("$eq", "$ne"):
        if not (argument is None or isinstance(argument, bool | str) or is_number(argument)):
            raise ConditionError(
                path,
                f"{operator} compares with === and needs a string, number, boolean or null; "
                "to match a whole list or object, write it as the attribute's value",
            )
    elif operator in ("$lt", "$lte", "$gt", "$gte"):
        if isinstance(argument, bool) or not (isinstance(argument, str) or is_number(argument)):
            raise ConditionError(path, f"{operator} needs a number or a string, got {argument!r}")
    elif operator.startswith("$v"):
        if not isinstance(argument, str) or not argument.strip():
            raise ConditionError(path, f'{operator} needs a version string such as "1.2.3"')
    elif operator in ("$in", "$nin", "$ini", "$nini", "$all", "$alli"):
        if not is_array(argument):
            raise ConditionError(path, f'{operator} needs a list, e.g. ["US", "CA"]')
        for i, item in enumerate(argument):
            if operator in ("$all", "$alli"):
                _check_value(item, f"{path}[{i}]", saved_groups)
            else:
                _check_json(item, f"{path}[{i}]")
    elif operator == "$exists":
        if not isinstance(argument, bool):
            raise ConditionError(path, "$exists needs true or false")
    elif operator in ("$regex", "$regexi"):
        if not isinstance(argument, str):
            raise ConditionError(path, f"{operator} needs a regular expression string")
        try:
            re.compile(argument)
        except re.error as exc:
            raise ConditionError(path, f"invalid regular expression {argument!r}: {exc}") from None
    elif operator == "$type":
        if argument not in TYPE_NAMES:
            raise ConditionError(path, f"$type must be one of {', '.join(TYPE_NAMES)}")
    elif operator == "$size":
        if is_number(argument):
            if argument < 0 or argument != int(argument):
                raise ConditionError(path, "$size needs a whole number >= 0 or an operator object")
        elif isinstance(argument, Mapping) and is_operator_object(argument):
            _check_value(argument, path, saved_groups)
        else:
            raise ConditionError(path, "$size needs a whole number or an operator object")
    elif operator == "$elemMatch":
        if not isinstance(argument, Mapping) or not argument:
            raise ConditionError(path, "$elemMatch needs a condition object")
        if is_operator_object(argument):
            _check_value(argument, path, saved_groups)
        else:
            _check_condition(argument, path, saved_groups)
    elif operator == "$not":
        _check_value(argument, path, saved_groups)
    elif operator in ("$inGroup", "$notInGroup"):
        if not isinstance(argument, str) or not argument:
            raise ConditionError(path, f"{operator} needs a saved group id")
        if saved_groups is not None and argument not in saved_groups:
            raise ConditionError(path, f"unknown saved group {argument!r}; create it first")
