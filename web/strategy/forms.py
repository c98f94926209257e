"""The strategy pages' forms (CSRF-protected): the configuration (``strategies.update_strategy``
validates it) and the A/B test of the strategy (``strategy_experiments.create_strategy_experiment``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_wtf import FlaskForm
from wtforms import FloatField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from experiments.db import Incentive, ModelRun

NUMBER = "give a number"
SHARE = {"step": "any", "min": 0, "max": 0.99}


class CheckboxListField(SelectMultipleField):
    """A multiple choice shown as labelled checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class StrategyForm(FlaskForm):
    budget = FloatField(
        "Budget (currency units per period)",
        validators=[InputRequired(message=NUMBER)],
        render_kw={"step": "any", "min": 0},
    )
    budget_period_days = IntegerField(
        "Budget period (days)",
        validators=[InputRequired(message="give a whole number of days")],
        render_kw={"min": 1, "max": 366},
    )
    holdout_share = FloatField(
        "Holdout share (no incentive, 0–1)",
        validators=[InputRequired(message=NUMBER)],
        render_kw=SHARE,
    )
    explore_share = FloatField(
        "Exploration share (random arm, 0–1)",
        validators=[InputRequired(message=NUMBER)],
        render_kw=SHARE,
    )
    objective = SelectField("Objective", choices=["profit", "revenue", "orders"])
    status = SelectField("Status", choices=["draft", "active", "paused"])
    approved_incentives = CheckboxListField("Approved incentives", validate_choice=False)
    fallback = SelectField("Fallback (users the model does not cover)", validate_choice=False)
    model_run_id = SelectField("Uplift model")

    def set_choices(
        self, incentives: list[Incentive], runs: list[ModelRun], experiment_keys: dict[int, str]
    ) -> None:
        labelled = [SelectChoice(i.key, f"{i.name} ({i.key})") for i in incentives]
        self.approved_incentives.choices = list(labelled)
        self.fallback.choices = [SelectChoice("", "— none —"), *labelled]
        self.model_run_id.choices = [
            SelectChoice("", "the promoted run of the source experiment"),
            *(
                SelectChoice(
                    str(r.id),
                    f"#{r.id} {r.architecture} on "
                    f"{experiment_keys.get(r.experiment_id or 0, 'no experiment')}"
                    f"{' (promoted)' if r.promoted else ''}",
                )
                for r in runs
                if r.status == "succeeded"
            ),
        ]

    def to_data(self) -> dict[str, Any]:
        """What ``update_strategy`` takes."""
        run = self.model_run_id.data
        return {
            "budget": self.budget.data,
            "budget_period_days": self.budget_period_days.data,
            "holdout_share": self.holdout_share.data,
            "explore_share": self.explore_share.data,
            "objective": self.objective.data,
            "status": self.status.data,
            "approved_incentives": list(self.approved_incentives.data or []),
            "fallback": self.fallback.data or None,
            "model_run_id": int(run) if run else None,
        }


def initial_data(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The form's values from ``strategies.snapshot``."""
    run = snapshot["model_run_id"]
    return {
        **{k: snapshot[k] for k in ("budget", "budget_period_days")},
        **{k: snapshot[k] for k in ("holdout_share", "explore_share")},
        **{k: snapshot[k] for k in ("objective", "status", "approved_incentives")},
        "fallback": snapshot["fallback"] or "",
        "model_run_id": str(run) if run else "",
    }


WEIGHT = {"step": "any", "min": 0, "max": 1}


class StrategyExperimentForm(FlaskForm):
    """A draft experiment: no incentive vs the strategy's winner for everyone vs the strategy."""

    key = StringField(
        "Experiment key",
        validators=[InputRequired(message="give the new experiment a key"), Length(max=100)],
    )
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])
    holdout_weight = FloatField(
        "Share with no incentive",
        default=0.34,
        validators=[InputRequired(NUMBER)],
        render_kw=WEIGHT,
    )
    winner_weight = FloatField(
        "Share with the winner for everyone",
        default=0.33,
        validators=[InputRequired(NUMBER)],
        render_kw=WEIGHT,
    )
    strategy_weight = FloatField(
        "Share targeted by the strategy",
        default=0.33,
        validators=[InputRequired(NUMBER)],
        render_kw=WEIGHT,
    )

    def weights(self) -> tuple[float, float, float]:
        return (self.holdout_weight.data, self.winner_weight.data, self.strategy_weight.data)


class PacingForm(FlaskForm):
    """Pace the budget over its period (``strategy_pacing.set_pacing`` validates it)."""

    start = StringField(
        "First day (YYYY-MM-DD, UTC)",
        validators=[InputRequired(message="give the first day, YYYY-MM-DD")],
        render_kw={"placeholder": "YYYY-MM-DD"},
    )
    schedule = StringField(
        "Schedule ('even', or one weight per day, comma-separated)",
        validators=[InputRequired(message="give 'even' or the daily weights")],
        default="even",
    )
    daily_units = FloatField(
        "Expected new units per day (the forecast until there is history)",
        validators=[InputRequired(message=NUMBER)],
        render_kw={"step": "any", "min": 0},
    )


def pacing_defaults(status: dict[str, Any] | None) -> dict[str, Any]:
    """The pacing form's values: the stored pacing, else an even schedule from today."""
    if status is None:
        return {"start": dt.datetime.now(dt.UTC).date().isoformat(), "schedule": "even"}
    schedule = status["schedule"]
    return {
        "start": status["start"],
        "schedule": schedule if isinstance(schedule, str) else ",".join(f"{w:g}" for w in schedule),
        "daily_units": status["daily_units"],
    }
