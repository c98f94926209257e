"""Targeting: GrowthBook's Mongo-style condition language, evaluated and validated.

Layer: ``experiments.targeting`` (pure, standard library only).

``eval_condition(attributes, condition)`` says whether a unit qualifies;
``validate_condition(condition)`` refuses a malformed condition with a message naming the
operator and the attribute path, for the admin and the API.
"""

from experiments.targeting.evaluate import eval_condition, get_path, padded_version_string
from experiments.targeting.validate import ConditionError, validate_condition

__all__ = [
    "ConditionError",
    "eval_condition",
    "get_path",
    "padded_version_string",
    "validate_condition",
]
