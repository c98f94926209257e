"""``liftlab uplift``: train, tune and score the uplift model; list its runs.

``liftlab models train`` and ``liftlab models list`` are the same code (``run_training`` and
``list_models``). Every bad input is refused before anything is written: a click error naming the
option (exit status 2), or a one-line domain error (exit status 1) whose transaction rolls back.
A training run that fails after its inputs were accepted is recorded as a "failed" model run, in
a transaction of its own (``record_failed_run``), and the command exits 1 naming run and error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from experiments.cli.context import FORMAT_OPTION, domain_errors, emit, settings, transaction

POPULATION = click.option(
    "--population",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Parquet file with unit_id and the user features.",
)
SEED = click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds splits and model."
)
USER = click.option("--user", help="Who ran it, recorded on the model run (default: the OS user).")
PARAMS_JSON = click.option(
    "--params-json",
    help='UpliftModel parameters as a JSON object, e.g. \'{"representation": [64], "head": [16]}\'.',
)
# parameters that a command sets through its own options, so never in its --params-json
OWN_OPTIONS = {"random_state": "--seed"}


def os_user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in this environment: record none
        return None


def parse_params(
    text: str | None, own: dict[str, str], *, option: str = "--params-json"
) -> dict[str, Any]:
    """A JSON object of UpliftModel parameters; a click error names the bad key and the fix."""
    from experiments.jobs.train import model_parameter_names

    if not text:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not valid JSON ({exc.msg} at character {exc.pos}); give an object such as "
            "'{\"learning_rate\": 0.001}'",
            param_hint=option,
        ) from None
    if not isinstance(params, dict):
        raise click.BadParameter(
            f"must be a JSON object of parameters, got {type(params).__name__}", param_hint=option
        )
    known = set(model_parameter_names())
    for key, value in params.items():
        if key in own:
            raise click.BadParameter(
                f"key {key!r}: set it with {own[key]} instead", param_hint=option
            )
        if key not in known:
            raise click.BadParameter(
                f"key {key!r} is not an UpliftModel parameter; use any of: "
                + ", ".join(sorted(known - set(own))),
                param_hint=option,
            )
        if key in ("representation", "head"):
            if not (
                isinstance(value, list)
                and value
                and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value)
            ):
                raise click.BadParameter(
                    f"key {key!r}: give a list of positive layer widths such as [64, 32]",
                    param_hint=option,
                )
            params[key] = tuple(value)
    return params


def record_failed_run(run: Any) -> None:
    """Commit a failed model run in its own transaction: the command's transaction rolls back."""
    with transaction() as session:
        session.add(run)


def run_training(
    experiment: str,
    population: Path,
    *,
    seed: int,
    params: dict[str, Any],
    created_by: str | None,
) -> Any:
    """The one training path of ``liftlab uplift train`` and ``liftlab models train``."""
    from experiments.jobs.train import train_on_experiment
    from experiments.jobs.training_data import load_population

    config = settings()
    with transaction() as session:
        run = train_on_experiment(
            session,
            experiment,
            load_population(population),
            config.artifact_dir,
            params=params,
            seed=seed,
            created_by=created_by,
            record_failure=record_failed_run,
        )
        session.flush()
        return _summary(run)


def _summary(run: Any) -> dict[str, Any]:
    keep = ("n_train", "n_test", "qini", "auuc", "policy_value_ipw", "policy_value_se")
    return {
        "id": run.id,
        "status": run.status,
        "architecture": run.architecture,
        "artifact_path": run.artifact_path,
        "data_fingerprint": run.data_fingerprint,
        "created_by": run.created_by,
        "metrics": {k: run.metrics.get(k) for k in keep if k in run.metrics},
    }


def _echo_run(summary: dict[str, Any]) -> None:
    click.echo(
        f"model run {summary['id']}: {summary['status']} ({summary['architecture']}), "
        f"by {summary['created_by'] or 'unknown'}, data {(summary['data_fingerprint'] or '')[:12]}"
    )
    click.echo(f"artifact: {summary['artifact_path']}")
    metrics = summary["metrics"]
    click.echo(f"held-out: {metrics.get('n_test')} units (trained on {metrics.get('n_train')})")
    for arm, qini in (metrics.get("qini") or {}).items():
        auuc = (metrics.get("auuc") or {}).get(arm)
        click.echo(f"  {arm}: Qini {qini:.4g}, AUUC {auuc:.4g}")
    if metrics.get("policy_value_ipw") is not None:
        click.echo(
            f"  best-arm policy value (IPW): {metrics['policy_value_ipw']:.4g} "
            f"± {metrics['policy_value_se']:.2g}"
        )


@click.group("uplift")
def uplift() -> None:
    """Train, tune and score the uplift model on experiment data."""


@uplift.command()
@click.option("--experiment", required=True, help="Key of the randomized experiment.")
@POPULATION
@click.option("--epochs", type=click.IntRange(1, 1000), help="max_epochs (default: the job's 60).")
@SEED
@PARAMS_JSON
@USER
def train(
    experiment: str,
    population: Path,
    epochs: int | None,
    seed: int,
    params_json: str | None,
    user: str | None,
) -> None:
    """Train on EXPERIMENT's randomized units; record parameters, data fingerprint, metrics."""
    params = parse_params(params_json, OWN_OPTIONS)
    if epochs is not None:
        if "max_epochs" in params:
            raise click.BadParameter(
                "give max_epochs once: --epochs or in --params-json", param_hint="--epochs"
            )
        params["max_epochs"] = epochs
    summary = run_training(
        experiment, population, seed=seed, params=params, created_by=user or os_user()
    )
    _echo_run(summary)


@uplift.command()
@click.option(
    "--model",
    "model_ref",
    required=True,
    help="A model run id (see `liftlab uplift list`) or the folder of a saved model.",
)
@POPULATION
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write, .parquet or .csv (replaced whole, never half-written).",
)
def score(model_ref: str, population: Path, output: Path) -> None:
    """Write unit_id and effect_<target>__<incentive> columns for every unit of a population."""
    from experiments.errors import ValidationError
    from experiments.jobs.score import check_output, score_population, write_atomically
    from experiments.jobs.training_data import load_population

    try:
        check_output(output)
    except ValidationError as exc:
        raise click.BadParameter(exc.message, param_hint="--output") from None
    with domain_errors():
        model = _load_model(model_ref)
        scores = score_population(model, load_population(population))
        write_atomically(scores, output)
    click.echo(
        f"scored {len(scores):,} units with {len(model.incentives_)} incentives "
        f"({len(scores.columns) - 1} effect columns) into {output}"
    )


def _load_model(ref: str) -> Any:
    from uplift import UpliftModel

    if ref.isdigit():
        from experiments.services import models

        with transaction() as session:
            run = models.get_run(session, int(ref))
            status, artifact = run.status, run.artifact_path
        if status != "succeeded" or not artifact:
            raise click.BadParameter(
                f"model run {ref} is {status} and has no model; give a succeeded run",
                param_hint="--model",
            )
        folder = Path(artifact)
    else:
        folder = Path(ref)
    if not (folder / "metadata.json").is_file():
        raise click.BadParameter(
            f"{folder} is not a saved model (no metadata.json); give a run id or a model folder",
            param_hint="--model",
        )
    try:
        return UpliftModel.load(folder)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise click.BadParameter(
            f"{folder} could not be loaded ({exc.__class__.__name__}: {exc})", param_hint="--model"
        ) from exc


@uplift.command()
@click.option("--experiment", required=True, help="Key of the randomized experiment.")
@POPULATION
@click.option("--trials", type=click.IntRange(min=1), required=True, help="Optuna trials.")
@SEED
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop starting new trials after this many seconds.",
)
@click.option(
    "--params-json",
    help="Fixed UpliftModel parameters (not searched) for every trial and the final model.",
)
@USER
def tune(
    experiment: str,
    population: Path,
    trials: int,
    seed: int,
    timeout: float | None,
    params_json: str | None,
    user: str | None,
) -> None:
    """Search the model's parameters on the DR pseudo-outcome loss; train and record the best."""
    from experiments.jobs.training_data import load_population

    try:
        from experiments.jobs.tune import SEARCHED, tune_on_experiment
    except ImportError as exc:  # optuna is in the causal extra
        raise click.ClickException(
            f"{exc}; install the causal extra: pip install 'liftlab[causal]'"
        ) from exc
    params = parse_params(params_json, OWN_OPTIONS)
    clash = sorted(k for k in params if k in SEARCHED)
    if clash:
        raise click.BadParameter(
            f"key {clash[0]!r} is searched by tune; remove it (or fix it with uplift train)",
            param_hint="--params-json",
        )
    config = settings()
    with transaction() as session:
        run, tuning = tune_on_experiment(
            session,
            experiment,
            load_population(population),
            config.artifact_dir,
            trials=trials,
            seed=seed,
            timeout=timeout,
            params=params,
            created_by=user or os_user(),
            record_failure=record_failed_run,
        )
        summary = _summary(run)
    rows = [
        {
            "trial": t["number"],
            "dr_loss": t["value"],
            **{k: t["params"][k] for k in SEARCHED},
            "best": "*" if t["number"] == tuning["best_trial"] else "",
        }
        for t in tuning["history"]
    ]
    emit(rows, "table", ["trial", "dr_loss", *SEARCHED, "best"])
    click.echo(
        f"\nbest trial {tuning['best_trial']}: DR loss {tuning['best_value']:.4g} "
        f"on {tuning['n_search_validation']} validation units"
    )
    _echo_run(summary)


@click.command("list")
@FORMAT_OPTION
def list_models(output_format: str) -> None:
    """List model runs (who ran each, and the fingerprint of its training data)."""
    from sqlalchemy import select

    from experiments.db import ModelRun

    with transaction() as session:
        rows = [
            {
                "id": r.id,
                "experiment_id": r.experiment_id,
                "architecture": r.architecture,
                "status": r.status,
                "promoted": r.promoted,
                "qini": r.metrics.get("qini"),
                "created_by": r.created_by,
                "data_fingerprint": r.data_fingerprint,
                "created_at": r.created_at,
            }
            for r in session.scalars(select(ModelRun).order_by(ModelRun.id.desc()))
        ]
    if output_format == "table":  # the first 12 hex digits identify a data set in a listing
        for row in rows:
            row["data_fingerprint"] = (row["data_fingerprint"] or "")[:12]
    emit(
        rows,
        output_format,
        [
            "id",
            "experiment_id",
            "architecture",
            "status",
            "promoted",
            "qini",
            "created_by",
            "data_fingerprint",
            "created_at",
        ],
    )


uplift.add_command(list_models)
