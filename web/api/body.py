"""Reading JSON request bodies with errors that name the field."""

from __future__ import annotations

from typing import Any

from flask import request

from experiments.errors import ValidationError


def json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError(
            "body", "send a JSON object with the header 'Content-Type: application/json'"
        )
    return data
