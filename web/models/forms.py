"""Model-run forms (CSRF-protected)."""

from __future__ import annotations

from flask_wtf import FlaskForm


class PromotionForm(FlaskForm):
    """An empty form: only its CSRF token matters (promote and demote)."""
