"""Admin forms (CSRF-protected)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from experiments.db import API_SCOPES, ROLES
from experiments.services.accounts import MIN_PASSWORD_LENGTH


class CreateUserForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", choices=list(ROLES), default="viewer")
    password = PasswordField(
        "Initial password",
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=1024,
                message=f"must be at least {MIN_PASSWORD_LENGTH} characters long",
            ),
        ],
    )


class UpdateUserForm(FlaskForm):
    role = SelectField("Role", choices=list(ROLES))
    active = BooleanField("Active")


class CreateApiKeyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    scope_assign = BooleanField("assign")
    scope_ingest = BooleanField("ingest")
    scope_admin = BooleanField("admin")

    def scopes(self) -> list[str]:
        return [s for s in API_SCOPES if getattr(self, f"scope_{s}").data]


class ConfirmForm(FlaskForm):
    """An empty form: only its CSRF token matters (revoke, logout)."""
