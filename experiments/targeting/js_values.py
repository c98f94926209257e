"""JavaScript value semantics for JSON data: the coercions GrowthBook's JS condition engine relies on.

Layer: ``experiments.targeting`` (pure, standard library only).

The GrowthBook conformance cases (``cases.json``) are produced by the JavaScript SDK, whose
condition engine compares with ``<``, ``===``, ``value + ""`` and ``value * 1``. These helpers
give those operators' results for values decoded from JSON (None, bool, int, float, str, list,
dict), so targeting evaluates exactly as a JS client does.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_JS_WHITESPACE = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_RADIX = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_RADIX_DIGITS = {16: re.compile(r"[0-9a-fA-F]+"), 8: re.compile(r"[0-7]+"), 2: re.compile(r"[01]+")}


def is_number(value: Any) -> bool:
    """A JSON number (Python's bool is an int, but JSON's true is not a number)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def js_type(value: Any) -> str:
    """The condition language's ``$type`` name of a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if is_array(value):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: an empty list or dict is true, 0, NaN and "" are false."""
    if value is None or value is False:
        return False
    if is_number(value):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def js_number_to_string(value: float) -> str:
    """``String(number)`` (ECMAScript Number::toString) for a double."""
    try:
        x = float(value)
    except OverflowError:
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number_to_string(-x)
    if math.isinf(x):
        return "Infinity"
    # Shortest round-trip digits from repr; x = 0.d1...dk * 10**n
    mantissa, _, exp = repr(x).partition("e")
    whole, _, fraction = mantissa.partition(".")
    padded = (whole + fraction).lstrip("0")
    digits = padded.rstrip("0")
    k = len(digits)
    n = int(exp or "0") - len(fraction) + len(padded)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return head + "e" + ("+" if n > 0 else "-") + str(abs(n - 1))


def js_to_string(value: Any) -> str:
    """``String(value)`` / ``value + ""`` for a JSON value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if is_number(value):
        return js_number_to_string(value)
    if isinstance(value, str):
        return value
    if is_array(value):
        return ",".join("" if item is None else js_to_string(item) for item in value)
    return "[object Object]"


def js_to_primitive(value: Any) -> Any:
    """ToPrimitive with the default hint: arrays and objects become strings."""
    if is_array(value) or isinstance(value, dict):
        return js_to_string(value)
    return value


def _string_to_number(text: str) -> float:
    text = text.strip(_JS_WHITESPACE)
    if text == "":
        return 0.0
    if text in ("Infinity", "+Infinity"):
        return math.inf
    if text == "-Infinity":
        return -math.inf
    radix = _RADIX.get(text[:2])
    if radix is not None:
        body = text[2:]
        return float(int(body, radix)) if _RADIX_DIGITS[radix].fullmatch(body) else math.nan
    if _DECIMAL.fullmatch(text):
        return float(text)
    return math.nan


def js_to_number(value: Any) -> float:
    """``Number(value)`` / ``value * 1`` for a JSON value (NaN when not numeric)."""
    value = js_to_primitive(value)
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if is_number(value):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        return _string_to_number(value)
    return math.nan


def utf16_bytes(text: str) -> bytes:
    """Big-endian UTF-16 bytes: they sort as JavaScript compares strings, by code units."""
    return text.encode("utf-16-be", "surrogatepass")


def js_less_than(left: Any, right: Any) -> bool | None:
    """``left < right`` per the Abstract Relational Comparison; None where JS gives undefined (NaN)."""
    left = js_to_primitive(left)
    right = js_to_primitive(right)
    if isinstance(left, str) and isinstance(right, str):
        if left.isascii() and right.isascii():
            return left < right
        return utf16_bytes(left) < utf16_bytes(right)
    a = js_to_number(left)
    b = js_to_number(right)
    if math.isnan(a) or math.isnan(b):
        return None
    return a < b


def js_compare(operator: str, left: Any, right: Any) -> bool:
    """JavaScript's ``<``, ``<=``, ``>``, ``>=`` on JSON values."""
    if operator == "<":
        return js_less_than(left, right) is True
    if operator == ">":
        return js_less_than(right, left) is True
    if operator == "<=":
        return js_less_than(right, left) is False
    if operator == ">=":
        return js_less_than(left, right) is False
    raise ValueError(f"unknown comparison operator {operator!r}; use <, <=, > or >=")


def js_strict_equal(left: Any, right: Any) -> bool:
    """``left === right``: same type and value; arrays and objects only equal themselves."""
    kind = js_type(left)
    if kind != js_type(right):
        return False
    if kind in ("array", "object", "unknown"):
        return left is right
    return bool(left == right)


def js_same_value_zero(left: Any, right: Any) -> bool:
    """``Array.prototype.includes`` equality: ``===`` except that NaN equals NaN."""
    if (
        isinstance(left, float)
        and isinstance(right, float)
        and math.isnan(left)
        and math.isnan(right)
    ):
        return True
    return js_strict_equal(left, right)


def _is_array_index(key: str) -> bool:
    return (
        key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1
    )


def js_key_order(obj: dict[str, Any]) -> list[str]:
    """Own property order: array-index keys ascending, then the rest in insertion order."""
    keys = [str(key) for key in obj]
    indexes = sorted((key for key in keys if _is_array_index(key)), key=int)
    return indexes + [key for key in keys if not _is_array_index(key)]


def js_json_stringify(value: Any) -> str:
    """``JSON.stringify(value)`` for a JSON value (compact, JS number format and key order)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if is_number(value):
        text = js_number_to_string(value)
        return text if text not in ("NaN", "Infinity", "-Infinity") else "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if is_array(value):
        return "[" + ",".join(js_json_stringify(item) for item in value) + "]"
    if isinstance(value, dict):
        by_key = {str(key): item for key, item in value.items()}
        return (
            "{"
            + ",".join(
                json.dumps(key, ensure_ascii=False) + ":" + js_json_stringify(by_key[key])
                for key in js_key_order(by_key)
            )
            + "}"
        )
    return "null"


def js_object_keys(value: Any) -> list[str]:
    """``Object.keys(value)``: dict keys, or the indexes of an array or a string."""
    if isinstance(value, dict):
        return js_key_order(value)
    if is_array(value) or isinstance(value, str):
        return [str(i) for i in range(len(value))]
    return []


def js_get(container: Any, key: str) -> tuple[bool, Any]:
    """``key in container`` and ``container[key]`` for an object or an array (own keys only)."""
    if isinstance(container, dict):
        if key in container:
            return True, container[key]
        return False, None
    if is_array(container):
        if key == "length":
            return True, len(container)
        if _is_array_index(key) and int(key) < len(container):
            return True, container[int(key)]
    return False, None
