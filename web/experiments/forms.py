"""Experiment forms (CSRF-protected). The services validate the content; these forms only parse.

Three nested forms follow what may change when: ``LiveExperimentForm`` holds what a running
experiment may still change (``experiments.LIVE_EDITABLE``), ``DraftExperimentForm`` adds what moves
users (variants, targeting, namespace), ``NewExperimentForm`` adds the immutable key.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    FloatField,
    Form,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from experiments.db import STATUSES, Incentive, Metric
from experiments.services.experiments import DESIGNS

NUMBER = "give a number"
DESIGN_LABELS = {
    "sequential": "Sequential (always-valid, any time)",
    "group_sequential": "Group sequential (planned looks)",
    "fixed": "Fixed horizon",
    "bayesian": "Bayesian",
}
SPENDING_LABELS = {"obrien_fleming": "O'Brien-Fleming", "pocock": "Pocock"}


class CheckboxListField(SelectMultipleField):
    """A multiple choice shown as labelled checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class VariantForm(Form):
    """One row of the variants table (no CSRF of its own: it lives inside the experiment form)."""

    key = StringField("Variant key", validators=[Length(max=100)])
    name = StringField("Variant name", validators=[Length(max=200)])
    weight = FloatField("Weight", validators=[InputRequired(message=NUMBER)])
    incentive = SelectField("Incentive", validate_choice=False)


class LiveExperimentForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    hypothesis = TextAreaField("Hypothesis", render_kw={"rows": 2})
    coverage = FloatField(
        "Coverage (share of eligible traffic, 0–1)",
        validators=[InputRequired(message=NUMBER)],
        render_kw={"step": "any", "min": 0, "max": 1},
    )
    metric_primary = SelectField("Primary metric", validate_choice=False)
    metric_secondary = CheckboxListField("Secondary metrics", validate_choice=False)
    metric_guardrail = CheckboxListField("Guardrail metrics", validate_choice=False)
    design_type = SelectField(
        "Design",
        choices=[SelectChoice(d, DESIGN_LABELS[d]) for d in DESIGNS],
        default="sequential",
    )
    design_alpha = FloatField(
        "Significance level α",
        validators=[InputRequired(message=NUMBER)],
        default=0.05,
        render_kw={"step": "any", "min": 0, "max": 0.5},
    )
    design_n_star = IntegerField(
        "N* (users at which the confidence sequence is tightest)",
        validators=[InputRequired(message="give a whole number")],
        default=10_000,
        render_kw={"min": 1},
    )
    design_looks = IntegerField("Planned looks", validators=[Optional()], default=5)
    design_planned_n = IntegerField("Planned users", validators=[Optional()], default=10_000)
    design_spending = SelectField(
        "Alpha spending",
        choices=[SelectChoice(k, v) for k, v in SPENDING_LABELS.items()],
        default="obrien_fleming",
    )
    design_cuped = BooleanField("CUPED variance reduction", default=True)

    def set_choices(self, incentives: list[Incentive], metrics: list[Metric]) -> None:
        labelled = [SelectChoice(m.key, f"{m.name} ({m.kind})") for m in metrics]
        self.metric_primary.choices = [SelectChoice("", "— choose one —"), *labelled]
        self.metric_secondary.choices = list(labelled)
        self.metric_guardrail.choices = list(labelled)


class DraftExperimentForm(LiveExperimentForm):
    variants = FieldList(FormField(VariantForm), min_entries=2, max_entries=20)
    condition = TextAreaField(
        "Targeting condition (JSON, GrowthBook syntax; empty admits everyone)",
        render_kw={"rows": 3, "spellcheck": "false"},
    )
    namespace_name = StringField("Namespace", validators=[Length(max=100)])
    namespace_start = FloatField(
        "Range start", validators=[Optional()], default=0.0, render_kw={"step": "any"}
    )
    namespace_end = FloatField(
        "Range end", validators=[Optional()], default=1.0, render_kw={"step": "any"}
    )

    def set_choices(self, incentives: list[Incentive], metrics: list[Metric]) -> None:
        super().set_choices(incentives, metrics)
        options = [SelectChoice("", "No incentive (control)")]
        options += [SelectChoice(i.key, f"{i.name} ({i.kind})") for i in incentives]
        for entry in self.variants:
            entry.form.incentive.choices = list(options)


class NewExperimentForm(DraftExperimentForm):
    key = StringField(
        "Key (lowercase letters, digits, '-' or '_'; never changes)",
        validators=[Length(max=100)],
    )


class FilterForm(Form):
    """The list's filters (a GET form: no CSRF)."""

    status = SelectField(
        "Status", choices=[SelectChoice("", "any status")] + [SelectChoice(s) for s in STATUSES]
    )
    q = StringField("Search key or name")


class TransitionForm(FlaskForm):
    status = SelectField("New status", choices=list(STATUSES))
    note = StringField("Note", validators=[Length(max=500)])


class CoverageForm(FlaskForm):
    coverage = FloatField(
        "New coverage (0–1)",
        validators=[InputRequired(message=NUMBER)],
        render_kw={"step": "any", "min": 0, "max": 1},
    )


def initial_data(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Form data for an experiment as ``experiments.snapshot`` returns it."""
    import json

    design = snapshot.get("design") or {}
    namespace = snapshot.get("namespace") or {}
    metrics = snapshot.get("metrics") or {}
    return {
        "name": snapshot["name"],
        "hypothesis": snapshot.get("hypothesis") or "",
        "coverage": snapshot["coverage"],
        "variants": [
            {"key": v["key"], "name": v["name"], "weight": v["weight"], "incentive": v["incentive"]}
            for v in snapshot["variants"]
        ],
        "condition": json.dumps(snapshot["condition"]) if snapshot.get("condition") else "",
        "namespace_name": namespace.get("name", ""),
        "namespace_start": namespace.get("start", 0.0),
        "namespace_end": namespace.get("end", 1.0),
        "metric_primary": (metrics.get("primary") or [""])[0],
        "metric_secondary": metrics.get("secondary") or [],
        "metric_guardrail": metrics.get("guardrail") or [],
        "design_type": design.get("type", "sequential"),
        "design_alpha": design.get("alpha", 0.05),
        "design_n_star": design.get("n_star", 10_000),
        "design_looks": design.get("looks", 5),
        "design_planned_n": design.get("planned_n", 10_000),
        "design_spending": design.get("spending", "obrien_fleming"),
        "design_cuped": design.get("cuped", True),
    }
