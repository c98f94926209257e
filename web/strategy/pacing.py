"""Pacing a strategy's budget from its page: set the period's start, schedule and forecast, or
stop pacing (``experiments.services.strategy_pacing``; analyst+, CSRF, errors next to the field)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from experiments.errors import ValidationError
from experiments.services import strategies, strategy_pacing
from web.auth.user import actor, role_required
from web.db import get_session
from web.strategy import bp
from web.strategy.forms import PacingForm
from web.strategy.views import show_error, strategy_form, strategy_page


@bp.route("/<key>/pacing", methods=["POST"])
@role_required("analyst")
def pace(key: str) -> Response | tuple[str, int]:
    session = get_session()
    strategy = strategies.get_strategy(session, key)
    snapshot = strategies.snapshot(session, strategy)
    form = PacingForm(formdata=request.form)
    if form.validate_on_submit():
        start = form.start.data.strip()
        try:
            strategy_pacing.set_pacing(
                session,
                strategy,
                start=start,
                schedule=form.schedule.data.strip(),
                daily_units=form.daily_units.data,
                actor=actor(),
            )
        except ValidationError as exc:
            session.rollback()
            show_error(getattr(form, exc.field, None), exc, "paced")
            strategy = strategies.get_strategy(session, key)
        else:
            session.commit()
            flash(f"Strategy {key} paces its budget from {start}.", "success")
            return redirect(url_for("strategy.show", key=key) + "#pacing")
    return strategy_page(strategy, strategy_form(session, snapshot=snapshot), 400, pacing_form=form)


@bp.route("/<key>/pacing/off", methods=["POST"])
@role_required("analyst")
def stop_pacing(key: str) -> Response:
    session = get_session()
    strategy = strategies.get_strategy(session, key)  # CSRF: checked app-wide (CSRFProtect)
    strategy_pacing.clear_pacing(session, strategy, actor=actor())
    session.commit()
    flash(f"Strategy {key} no longer paces its budget.", "success")
    return redirect(url_for("strategy.show", key=key) + "#pacing")
