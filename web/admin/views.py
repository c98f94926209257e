"""Users, API keys and the audit log."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from experiments.errors import ConflictError, ValidationError
from experiments.services import accounts, audit
from web.admin import bp
from web.admin.forms import ConfirmForm, CreateApiKeyForm, CreateUserForm, UpdateUserForm
from web.auth.user import actor, role_required
from web.db import get_session


@bp.route("/users", methods=["GET", "POST"])
@role_required("admin")
def users() -> str | Response:
    session = get_session()
    form = CreateUserForm()
    status = 200
    if form.validate_on_submit():
        try:
            account = accounts.create_account(
                session,
                email=form.email.data or "",
                password=form.password.data or "",
                role=form.role.data,
                actor=actor(),
            )
        except (ValidationError, ConflictError) as exc:
            getattr(form, exc.field, form.email).errors.append(exc.message)
            session.rollback()
            status = 400
        else:
            session.commit()
            flash(f"Created {account.email} ({account.role}).", "success")
            return redirect(url_for("admin.users"))
    elif request.method == "POST":
        status = 400
    rows = [
        (a, UpdateUserForm(prefix=f"u{a.id}", role=a.role, active=a.active))
        for a in accounts.list_accounts(session)
    ]
    return render_template("admin/users.html", form=form, rows=rows), status


@bp.route("/users/<int:account_id>", methods=["POST"])
@role_required("admin")
def update_user(account_id: int) -> Response:
    session = get_session()
    form = UpdateUserForm(prefix=f"u{account_id}")
    if not form.validate_on_submit():
        flash("The form was incomplete; try again.", "error")
        return redirect(url_for("admin.users"))
    try:
        account = accounts.update_account(
            session, account_id, role=form.role.data, active=form.active.data, actor=actor()
        )
    except (ValidationError, ConflictError) as exc:
        session.rollback()
        flash(str(exc), "error")
    else:
        session.commit()
        flash(f"Updated {account.email}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/api-keys", methods=["GET", "POST"])
@role_required("admin")
def api_keys() -> str | Response:
    from flask_login import current_user

    session = get_session()
    form = CreateApiKeyForm()
    secret = None
    status = 200
    if form.validate_on_submit():
        try:
            key, secret = accounts.create_api_key(
                session,
                name=form.name.data or "",
                scopes=form.scopes(),
                actor=actor(),
                account_id=current_user.id,
            )
        except ValidationError as exc:
            session.rollback()
            getattr(form, exc.field, form.name).errors.append(exc.message)
            status = 400
        else:
            session.commit()
            flash(f"Created key {key.name}. Copy it now: it is shown only once.", "success")
            form = CreateApiKeyForm(formdata=None)
    elif request.method == "POST":
        status = 400
    return render_template(
        "admin/api_keys.html",
        form=form,
        secret=secret,
        keys=accounts.list_api_keys(session),
        revoke_form=ConfirmForm(),
    ), status


@bp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@role_required("admin")
def revoke_api_key(key_id: int) -> Response:
    session = get_session()
    if ConfirmForm().validate_on_submit():
        key = accounts.revoke_api_key(session, key_id, actor=actor())
        session.commit()
        flash(f"Revoked key {key.name}.", "success")
    return redirect(url_for("admin.api_keys"))


@bp.route("/audit")
@role_required("analyst")
def audit_log() -> str:
    entity_type = request.args.get("entity_type") or None
    entries = audit.recent(get_session(), limit=500, entity_type=entity_type)
    return render_template("admin/audit.html", entries=entries, entity_type=entity_type)
