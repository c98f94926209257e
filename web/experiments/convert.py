"""From the experiment form to the service's data, and from a service error back to a form field."""

from __future__ import annotations

import json
import re
from typing import Any

from wtforms import Field

from experiments.errors import ValidationError
from web.experiments.forms import DraftExperimentForm, LiveExperimentForm, NewExperimentForm

# the service's error field (a dotted path) → the form field that shows it
_ERROR_FIELDS = {
    "key": "key",
    "name": "name",
    "hypothesis": "hypothesis",
    "coverage": "coverage",
    "condition": "condition",
    "namespace": "namespace_name",
    "namespace.name": "namespace_name",
    "namespace.start": "namespace_start",
    "namespace.end": "namespace_end",
    "metrics": "metric_primary",
    "metrics.primary": "metric_primary",
    "metrics.secondary": "metric_secondary",
    "metrics.guardrail": "metric_guardrail",
    "design": "design_type",
    "design.type": "design_type",
    "design.alpha": "design_alpha",
    "design.n_star": "design_n_star",
    "design.looks": "design_looks",
    "design.planned_n": "design_planned_n",
    "design.spending": "design_spending",
}
_VARIANT_ERROR = re.compile(r"^variants\[(\d+)\]\.(key|name|weight|incentive)$")


def _design(form: LiveExperimentForm) -> dict[str, Any]:
    design: dict[str, Any] = {
        "type": form.design_type.data,
        "alpha": form.design_alpha.data,
        "n_star": form.design_n_star.data,
        "cuped": bool(form.design_cuped.data),
    }
    if form.design_type.data == "group_sequential":
        design["looks"] = form.design_looks.data
        design["planned_n"] = form.design_planned_n.data
        design["spending"] = form.design_spending.data
    return design


def parse_json_object(field: str, text: str | None, example: str) -> dict[str, Any] | None:
    """The JSON object typed in ``field``, or None when empty; a ValidationError names the fault."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            field, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise ValidationError(field, f"give a JSON object, e.g. {example}")
    return value


def parse_condition(text: str | None) -> dict[str, Any] | None:
    """The targeting condition typed as JSON, or None when empty."""
    return parse_json_object("condition", text, '{"device": "mobile"}')


def form_to_data(form: LiveExperimentForm) -> dict[str, Any]:
    """The service's ``data`` for the fields this form carries."""
    data: dict[str, Any] = {
        "name": (form.name.data or "").strip(),
        "hypothesis": (form.hypothesis.data or "").strip() or None,
        "coverage": form.coverage.data,
        "metrics": {
            "primary": [form.metric_primary.data] if form.metric_primary.data else [],
            "secondary": list(form.metric_secondary.data or []),
            "guardrail": list(form.metric_guardrail.data or []),
        },
        "design": _design(form),
    }
    if isinstance(form, DraftExperimentForm):
        data["variants"] = [
            {
                "key": (entry.form.key.data or "").strip(),
                "name": (entry.form.name.data or "").strip() or None,
                "weight": entry.form.weight.data,
                "incentive": entry.form.incentive.data or None,
            }
            for entry in form.variants
        ]
        data["condition"] = parse_condition(form.condition.data)
        name = (form.namespace_name.data or "").strip()
        data["namespace"] = (
            {"name": name, "start": form.namespace_start.data, "end": form.namespace_end.data}
            if name
            else None
        )
    if isinstance(form, NewExperimentForm):
        data["key"] = (form.key.data or "").strip()
    return data


def field_for(form: LiveExperimentForm, error_field: str) -> Field | None:
    """The form field that shows a service error on ``error_field``, if the form has it."""
    match = _VARIANT_ERROR.match(error_field)
    if match and isinstance(form, DraftExperimentForm):
        index, name = int(match.group(1)), match.group(2)
        if index < len(form.variants.entries):
            return form.variants.entries[index].form[name]  # type: ignore[no-any-return]
    name = _ERROR_FIELDS.get(error_field)
    if name and name in form:
        return form[name]  # type: ignore[no-any-return]
    return None


def show_error(form: LiveExperimentForm, error_field: str, message: str) -> dict[str, list[str]]:
    """Attach ``message`` to its field; returns the errors that belong to no single field, keyed
    ``variants`` (shown above the variants table) or ``form`` (shown above the form)."""
    field = field_for(form, error_field)
    if field is None:
        if error_field == "variants" or error_field.startswith("variants"):
            return {"variants": [message]}
        return {"form": [f"{error_field}: {message}" if error_field else message]}
    if isinstance(field.errors, tuple):  # a field that was not validated holds an empty tuple
        field.errors = []
    field.errors.append(message)
    return {}
