"""Report-page form (CSRF-protected): privacy settings of the report to generate."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField
from wtforms.validators import NumberRange, Optional


class GenerateForm(FlaskForm):
    k_min = IntegerField(
        "Suppress segments smaller than (k)", default=50, validators=[NumberRange(min=1)]
    )
    epsilon = DecimalField(
        "Differential privacy epsilon (empty: no noise)",
        validators=[Optional(), NumberRange(min=0.001)],
    )
