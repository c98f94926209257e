"""Results-page forms (CSRF-protected)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length


class WinnerForm(FlaskForm):
    winner = SelectField("Winning variant")
    note = StringField("Why (kept in the audit log)", validators=[Length(max=500)])


class RefreshForm(FlaskForm):
    """An empty form: only its CSRF token matters."""
