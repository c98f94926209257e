"""Login and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user
from werkzeug.wrappers import Response

from experiments.services import accounts
from web.auth import bp
from web.auth.forms import LoginForm
from web.auth.user import CurrentUser
from web.db import get_session


def _safe_next(target: str | None) -> str:
    # only same-site relative paths: an open redirect would let a phishing link bounce through us
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        session = get_session()
        account = accounts.authenticate(session, form.email.data or "", form.password.data or "")
        if account is None:
            form.password.errors.append("Unknown e-mail or wrong password.")
        else:
            user = CurrentUser.of(account)
            session.commit()
            login_user(user, remember=bool(form.remember.data))
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
