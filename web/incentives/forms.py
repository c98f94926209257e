"""The incentive form (CSRF-protected). ``catalog.create_incentive`` validates the content."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from experiments.db import INCENTIVE_KINDS

# how each kind's cost is counted, and an example of its parameters (docs/simulator.md; the
# simulator's constants are not imported: that would load pandas into every web worker)
COST_MODELS = {
    "percent_of_gross": "percent/100 of every order's gross value while the offer is valid",
    "fixed_per_redemption": "the coupon amount, per redeemed coupon",
    "shipping_fee_waived": "the shipping fee the customer would have paid",
    "unit_cost_per_converter": "the gift's unit cost, once per converting user",
    "percent_of_bundle": "percent/100 of every order that takes the bundle",
}
KIND_DEFAULTS = {
    "percent_discount": ("percent_of_gross", '{"percent": 10}'),
    "fixed_coupon": ("fixed_per_redemption", '{"amount": 5, "min_basket": 40}'),
    "free_shipping": ("shipping_fee_waived", '{"threshold": 50}'),
    "gift": ("unit_cost_per_converter", '{"unit_cost": 4, "perceived_value": 12}'),
    "bundle": ("percent_of_bundle", '{"percent": 15, "min_items": 2}'),
}
KIND_LABELS = {
    "percent_discount": "Percent discount",
    "fixed_coupon": "Fixed coupon",
    "free_shipping": "Free shipping",
    "gift": "Gift",
    "bundle": "Bundle",
}


class IncentiveForm(FlaskForm):
    key = StringField("Key (lowercase letters, digits, '-' or '_')", validators=[Length(max=100)])
    name = StringField("Name", validators=[Length(max=200)])
    kind = SelectField(
        "Kind",
        choices=[
            SelectChoice(
                k,
                KIND_LABELS[k],
                render_kw={"data-params": KIND_DEFAULTS[k][1], "data-cost": KIND_DEFAULTS[k][0]},
            )
            for k in INCENTIVE_KINDS
        ],
        default="percent_discount",
    )
    params = TextAreaField(
        "Parameters (JSON)",
        default=KIND_DEFAULTS["percent_discount"][1],
        render_kw={"rows": 3, "spellcheck": "false"},
    )
    cost_model = SelectField(
        "Cost model",
        choices=[SelectChoice(k, f"{k}: {v}") for k, v in COST_MODELS.items()],
        default="percent_of_gross",
    )
    description = TextAreaField("Description", render_kw={"rows": 2})
