"""Strategy pages: the list, one strategy (configuration form, plan, frontier, calibration,
decision log, spend ledger, the experiments that test it), saving its configuration, and creating
a draft A/B test of it (no incentive vs its winner for everyone vs the strategy).

Batch decisions are a job (``liftlab strategy run KEY --population PATH``); these pages show what
the last run planned and decided (the current ledger), earlier runs' logs (``?run=N``) and one
unit's decisions across runs and experiments (``?unit=ID``), and the command to run again.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from experiments.db import Experiment, Strategy
from experiments.errors import ConflictError, ValidationError
from experiments.services import (
    catalog,
    models,
    strategies,
    strategy_experiments,
    strategy_pacing,
)
from web.auth.user import actor, role_required
from web.db import get_session
from web.strategy import bp
from web.strategy.chart import frontier_chart
from web.strategy.decisions import decision_page
from web.strategy.forms import (
    PacingForm,
    StrategyExperimentForm,
    StrategyForm,
    initial_data,
    pacing_defaults,
)

BUCKETS = ("holdout", "explore", "exploit")  # the order of the plan's count_by_bucket


def plan_rows(plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """The plan's per-arm and per-bucket numbers as table rows."""
    if not plan:
        return None
    arms = list(plan.get("arms") or [])
    columns = [list(plan.get(k) or [None] * len(arms)) for k in ("count_by_arm", "spend_by_arm")]
    values = list(plan.get("value_by_arm") or [None] * len(arms))
    return {
        "arms": [
            {"arm": a, "users": n, "spend": s, "value": v}
            for a, n, s, v in zip(arms, *columns, values, strict=False)
        ],
        "buckets": list(zip(BUCKETS, plan.get("count_by_bucket") or [], strict=False)),
    }


def strategy_form(
    session: Any, formdata: Any = None, snapshot: dict[str, Any] | None = None
) -> StrategyForm:
    form = (
        StrategyForm(formdata=None, data=initial_data(snapshot))
        if snapshot is not None
        else StrategyForm(formdata=formdata)
    )
    form.set_choices(
        catalog.list_incentives(session), models.list_runs(session), models.experiment_keys(session)
    )
    return form


# where create_strategy_experiment's error fields land on the A/B test form
WEIGHT_FIELDS = ("holdout_weight", "winner_weight", "strategy_weight")


def _experiment_field(form: StrategyExperimentForm, field: str) -> Any:
    """The form field that ``create_strategy_experiment``'s error ``field`` is about, or None."""
    if field in ("key", "name"):
        return getattr(form, field)
    for i, name in enumerate(WEIGHT_FIELDS):
        if field.startswith(f"variants[{i}]"):
            return getattr(form, name)
    if field in ("variants", "weights"):
        return form.strategy_weight
    return None


def show_error(field: Any, exc: ValidationError | ConflictError, verb: str) -> None:
    """A service error next to the form field it names, else flashed ("Not <verb>: ...")."""
    if field is None:
        flash(f"Not {verb}: {exc}", "error")
    else:
        field.errors = [*field.errors, exc.message]


def strategy_page(
    strategy: Strategy,
    form: StrategyForm,
    status: int = 200,
    test_form: StrategyExperimentForm | None = None,
    pacing_form: PacingForm | None = None,
) -> tuple[str, int]:
    session = get_session()
    pacing = strategy_pacing.pacing_status(session, strategy)
    config = strategy.config or {}
    plan: dict[str, Any] | None = config.get("plan") or None
    source = (
        session.get(Experiment, strategy.source_experiment_id)
        if strategy.source_experiment_id
        else None
    )
    page = render_template(
        "strategy/show.html",
        strategy=strategy,
        form=form,
        can_write=current_user.can("analyst"),
        plan=plan,
        rows=plan_rows(plan),
        stale=plan is not None and plan.get("budget") != strategy.budget,
        chart=frontier_chart(config.get("frontier") or [], strategy.budget),
        frontier_sample=config.get("frontier_sample"),
        calibration=config.get("calibration") or {},
        source_key=source.key if source else config.get("source_experiment"),
        decisions=decision_page(
            session,
            strategy,
            request.args.get("page", 1, type=int),
            batch_run=request.args.get("run") or None,
            unit_id=(request.args.get("unit") or "").strip()[:200] or None,
        ),
        ledger=strategies.spend_summary(session, strategy.key),
        test_form=test_form or StrategyExperimentForm(formdata=None, key=f"{strategy.key}-ab"),
        experiments=strategy_experiments.experiments_testing(session, strategy),
        pacing=pacing,
        pacing_form=pacing_form or PacingForm(formdata=None, data=pacing_defaults(pacing)),
    )
    return page, status


@bp.route("/")
@role_required("viewer")
def index() -> str:
    return render_template("strategy/index.html", rows=strategies.list_strategies(get_session()))


@bp.route("/<key>")
@role_required("viewer")
def show(key: str) -> tuple[str, int]:
    session = get_session()
    strategy = strategies.get_strategy(session, key)
    return strategy_page(
        strategy, strategy_form(session, snapshot=strategies.snapshot(session, strategy))
    )


@bp.route("/<key>", methods=["POST"])
@role_required("analyst")
def configure(key: str) -> Response | tuple[str, int]:
    session = get_session()
    strategy = strategies.get_strategy(session, key)
    form = strategy_form(session, formdata=request.form)
    if not form.validate_on_submit():
        return strategy_page(strategy, form, 400)
    try:
        strategies.update_strategy(session, key, form.to_data(), actor=actor())
    except (ValidationError, ConflictError) as exc:
        session.rollback()
        show_error(getattr(form, exc.field, None), exc, "saved")
        return strategy_page(strategies.get_strategy(session, key), form, 400)
    session.commit()
    flash(f"Saved strategy {key}. Run the strategy job to apply a new budget.", "success")
    return redirect(url_for("strategy.show", key=key))


@bp.route("/<key>/experiment", methods=["POST"])
@role_required("analyst")
def create_experiment(key: str) -> Response | tuple[str, int]:
    """A draft experiment testing the strategy; the experiment's page starts it."""
    session = get_session()
    strategy = strategies.get_strategy(session, key)
    snapshot = strategies.snapshot(session, strategy)
    test_form = StrategyExperimentForm(formdata=request.form)
    if not test_form.validate_on_submit():
        return strategy_page(strategy, strategy_form(session, snapshot=snapshot), 400, test_form)
    try:
        experiment = strategy_experiments.create_strategy_experiment(
            session,
            test_form.key.data.strip(),
            key,
            actor=actor(),
            name=(test_form.name.data or "").strip() or None,
            weights=test_form.weights(),
        )
    except (ValidationError, ConflictError) as exc:
        session.rollback()
        show_error(_experiment_field(test_form, exc.field), exc, "created")
        strategy = strategies.get_strategy(session, key)
        return strategy_page(strategy, strategy_form(session, snapshot=snapshot), 400, test_form)
    session.commit()
    flash(
        f"Created draft experiment {experiment.key} testing strategy {key}; start it here.",
        "success",
    )
    return redirect(url_for("experiments.detail", key=experiment.key))
