"""Loading a Spark decision log as a strategy's batch run (``experiments.jobs.spark_load``), on
both backends, without a JVM: the folder is written in the Spark job's format
(``spark_output.COLUMNS``, part files sorted by row, ``write_manifest``) from the single-process
plan, which the Spark job's decisions equal user for user (``test_spark_strategy.py`` checks
that, and loads the Spark job's own output).

Checked: the loaded rows are those ``run_strategy`` logs, column for column and in the same
order; they are the current ledger (``/decide`` repeats them, the cap and the spend summary count
them); a load that fails halfway, or bad files, rows or plans, leave the table and the batch run
number as they were, with an error naming the option and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from experiments.db import AuditEntry, Decision
from experiments.errors import ConflictError, ValidationError
from experiments.jobs import spark_load
from experiments.jobs.spark_output import MANIFEST, build_manifest, write_manifest
from experiments.jobs.strategy_run import (
    SPARK_PLAN_KEYS,
    mean_costs,
    plan_population,
    profit_frontier,
    run_strategy,
    serving_state,
    strategy_inputs,
)
from experiments.services import strategies
from experiments.services.strategy_ledger import cap_spend, latest_decision, ledger_spend
from experiments.strategy import spend_curve

ARMS = ["coupon_5", "discount_20"]
KEY = "loaded"
BUDGET = 1000.0


@pytest.fixture(scope="module")
def population():  # type: ignore[no-untyped-def]
    from experiments.simulation import simulate_shop

    return simulate_shop(n_users=2500, seed=8).users


def make_strategy(online_strategy, session, key: str = KEY):  # type: ignore[no-untyped-def]
    """An active strategy scored by the shop model whose budget binds (BUDGET)."""
    return online_strategy(session, key=key, budget=BUDGET)


def write_output(  # type: ignore[no-untyped-def]
    session, folder: Path, population, key: str = KEY, cuts=(0, 900, 1700), serving: bool = False
):
    """``key``'s decisions for ``population`` in the Spark job's output format; the plan. The
    manifest carries the plan's serving state and profit frontier with ``serving`` (as the
    Spark job writes them), else neither (as a folder written before they were recorded)."""
    inputs, model = strategy_inputs(session, key, list(population.columns))
    shifts, economics, plan = plan_population(inputs, model, population)
    strategy = strategies.get_strategy(session, key)
    n = len(population)
    arm = plan.arm
    table = pa.table(
        {
            "row": pa.array(np.arange(n), pa.int64()),
            "unit_id": pa.array(population["unit_id"].astype(str).tolist(), pa.string()),
            "incentive": pa.array([inputs.arms[a] if a >= 0 else None for a in arm], pa.string()),
            "incentive_id": pa.array(
                [inputs.incentive_ids[a] if a >= 0 else None for a in arm], pa.int64()
            ),
            "bucket": pa.array([str(b) for b in plan.bucket], pa.string()),
            "propensity": pa.array(plan.propensity, pa.float64()),
            "expected_value": pa.array(plan.expected_value, pa.float64()),
            "expected_cost": pa.array(plan.expected_cost, pa.float64()),
            "strategy": pa.array([key] * n, pa.string()),
            "model_run_id": pa.array([inputs.model_run_id] * n, pa.int64()),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [*cuts, n]
    for i in range(len(cuts)):
        part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
        pq.write_table(part, folder / f"part-{i:05d}.snappy.parquet", row_group_size=400)
    (folder / "_SUCCESS").write_text("")
    summary = plan.summary()
    manifest = build_manifest(
        inputs,
        strategy_id=strategy.id,
        approved=list(strategy.approved_incentives),
        plan=summary,
        rows=n,
        online=(
            serving_state(
                inputs,
                shifts,
                mean_costs(economics.cost),
                spend_curve(economics.value, economics.cost, plan.mu),
            )
            if serving
            else None
        ),
        frontier={
            "points": profit_frontier(economics.value, economics.cost, inputs.budget),
            "sample": {"users": n, "of": n},
        }
        if serving
        else None,
    )
    write_manifest(str(folder), manifest)
    return summary


def rewrite_part(folder: Path, index: int, change) -> None:  # type: ignore[no-untyped-def]
    """Apply ``change`` to part ``index`` (an Arrow table -> table) and list the new file in the
    manifest, so that only the row checks can catch it."""
    path = sorted(folder.glob("part-*"))[index]
    pq.write_table(change(pq.read_table(path)), path)
    relist(folder)


def relist(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.pop("files")
    write_manifest(str(folder), manifest)


def set_cell(table: pa.Table, column: str, i: int, value, type_=None) -> pa.Table:  # type: ignore[no-untyped-def]
    values = table.column(column).to_pylist()
    values[i] = value
    index = table.schema.get_field_index(column)
    return table.set_column(
        index, column, pa.array(values, type_ or table.schema.field(index).type)
    )


def own_rows(session, batch_run: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return [
        (
            d.unit_id,
            d.incentive_id,
            d.bucket,
            d.propensity,
            d.expected_value,
            d.expected_cost,
            d.context,
            d.experiment_id,
        )
        for d in session.scalars(
            select(Decision).where(Decision.batch_run == batch_run).order_by(Decision.id)
        )
    ]


def count(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(Decision)))


def test_a_loaded_output_is_the_current_ledger_as_a_local_run_logs_it(
    db_session, online_strategy, population, tmp_path
) -> None:
    make_strategy(online_strategy, db_session)
    folder = tmp_path / "decisions"
    plan = write_output(db_session, folder, population)
    assert plan["lambda"] > 0 and plan["spend"] > BUDGET - 4  # the budget binds

    loaded = spark_load.load_decisions(db_session, KEY, str(folder), actor="test")

    strategy = strategies.get_strategy(db_session, KEY)
    assert (loaded.batch_run, loaded.users, strategy.batch_run) == (1, len(population), 1)
    assert strategy.config["engine"] == "spark" and strategy.config["decisions_path"] == str(folder)
    assert strategy.config["plan"] == json.loads(json.dumps(plan))
    assert strategy.config["loaded"] == {"output_id": loaded.output_id, "batch_run": 1}
    assert "online" not in strategy.config and "frontier" not in strategy.config
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "strategy.load")).one()
    assert entry.after["batch_run"] == 1 and entry.after["users"] == len(population)
    rows = own_rows(db_session, 1)
    assert len(rows) == len(population)
    assert len({d.decided_at for d in db_session.scalars(select(Decision))}) == 1
    # the current ledger: repeated by /decide, counted by the cap, shown by the spend summary
    summary = strategies.spend_summary(db_session, KEY)
    assert (summary["batch_run"], summary["current"]) == (1, True)
    assert sum(r["users"] for r in summary["ledger"]) == len(population)
    assert summary["planned_spend"] == pytest.approx(plan["spend"], rel=1e-12)
    assert cap_spend(db_session, strategy) == ledger_spend(db_session, strategy)
    assert ledger_spend(db_session, strategy) == pytest.approx(plan["spend"], rel=1e-12)
    assert strategy.planned_spend == pytest.approx(plan["spend"], rel=1e-12)  # the cap's total
    for unit in population["unit_id"].astype(str)[:25]:
        logged = latest_decision(db_session, strategy, unit)
        served = strategies.decide(db_session, KEY, unit)
        assert served.decision_id == logged.decision_id and served.context["source"] == "batch"
    # a new unit: no serving state in this manifest, so the fallback, whose coupon (5.00) does
    # not fit in what the loaded plan left
    new = [strategies.decide(db_session, KEY, f"never-seen-{i}") for i in range(10)]
    assert all(d.batch_run == 1 for d in new)
    assert {d.context["online_reason"] for d in new} == {"plan_without_serving_state"}
    capped = [d for d in new if d.context.get("budget_exhausted")]
    assert capped and all(d.incentive_id is None and d.expected_cost == 0 for d in capped)
    for d in capped:
        assert d.context["withheld"]["expected_cost"] == 5.0
        assert d.context["budget_cap"]["planned_spend"] == pytest.approx(plan["spend"], rel=1e-12)
    assert cap_spend(db_session, strategy) <= strategy.budget
    db_session.refresh(strategy)
    assert strategy.planned_spend == pytest.approx(cap_spend(db_session, strategy), rel=1e-12)
    assert count(db_session) == len(population) + len(new)

    # what a local run logs for the same population, user for user and in the same order
    run_strategy(db_session, KEY, population)
    assert strategies.get_strategy(db_session, KEY).batch_run == 2
    assert own_rows(db_session, 2) == rows
    assert rows[0][6] == {"source": "batch", "model_run_id": strategy.model_run_id}


def test_a_loaded_serving_state_scores_new_units_online(
    db_session, online_strategy, population, tmp_path, features_of
) -> None:
    """The manifest's serving state becomes the plan's: a unit the run never saw, with features,
    is scored by the model, and a local run of the same population records the same state."""
    make_strategy(online_strategy, db_session)
    folder = tmp_path / "decisions"
    write_output(db_session, folder, population, serving=True)
    spark_load.load_decisions(db_session, KEY, str(folder), actor="test")
    config = strategies.get_strategy(db_session, KEY).config
    state, manifest = config["online"], json.loads((folder / MANIFEST).read_text())
    assert state == manifest["online"] and config["frontier"] == manifest["frontier"]["points"]
    n = len(population)
    assert config["frontier_sample"] == {"users": n, "of": n}
    features = features_of(population, 0, state["features"])
    decision = strategies.decide(db_session, KEY, "after-the-load", features)
    assert decision.context["source"] == "online-model", decision.context
    run_strategy(db_session, KEY, population)
    config = strategies.get_strategy(db_session, KEY).config
    assert config["online"] == state and config["frontier"] == manifest["frontier"]["points"]
    assert not set(SPARK_PLAN_KEYS) & set(config)  # the local plan is no longer a Spark one


@pytest.mark.parametrize("failure", ["file changed after the checks", "insert fails"])
def test_a_load_that_fails_halfway_leaves_the_ledger_as_it_was(
    db_session, online_strategy, population, tmp_path, monkeypatch, failure
) -> None:
    make_strategy(online_strategy, db_session)
    run_strategy(db_session, KEY, population.iloc[:300])  # the current ledger: batch run 1
    before = own_rows(db_session, 1)
    config_before = strategies.get_strategy(db_session, KEY).config
    planned_before = strategies.get_strategy(db_session, KEY).planned_spend
    folder = tmp_path / "decisions"
    write_output(db_session, folder, population)
    monkeypatch.setattr(spark_load, "CHUNK", 500)
    calls: list[int] = []
    if failure == "insert fails":

        def insert(session, run, users):  # type: ignore[no-untyped-def]
            calls.append(len(users))
            if len(calls) == 3:
                raise RuntimeError("the database went away")
            return real_insert(session, run, users)

        real_insert = spark_load.insert_decisions
        monkeypatch.setattr(spark_load, "insert_decisions", insert)
        expected: type[Exception] = RuntimeError
    else:
        real_check = spark_load.check_files

        def check_then_corrupt(*args):  # type: ignore[no-untyped-def]
            real_check(*args)
            part = sorted(folder.glob("part-*"))[1]
            part.write_bytes(part.read_bytes()[:-100])  # truncated after pass 1

        monkeypatch.setattr(spark_load, "check_files", check_then_corrupt)
        expected = ValidationError
    with pytest.raises(expected) as error:
        spark_load.load_decisions(db_session, KEY, str(folder))
    if failure == "insert fails":
        assert len(calls) == 3  # two chunks were logged before the failure
    else:
        assert error.value.field == "--decisions" and "part-00001" in str(error.value)
        assert "changed or corrupt" in str(error.value)
    strategy = strategies.get_strategy(db_session, KEY)
    assert strategy.batch_run == 1 and strategy.config == config_before
    assert strategy.planned_spend == planned_before > 0  # the cap's total as it was
    assert count(db_session) == 300 and own_rows(db_session, 1) == before
    assert own_rows(db_session, 2) == []
    unit = str(population["unit_id"].iloc[0])
    assert latest_decision(db_session, strategy, unit).batch_run == 1


def _drop_last_row(t: pa.Table) -> pa.Table:
    return t.slice(0, t.num_rows - 1)


BAD_FILES = {
    "a part's bytes changed": (
        lambda f: (p := sorted(f.glob("part-*"))[2]).write_bytes(p.read_bytes()[:-1] + b"\0"),
        "part-00002.snappy.parquet: has",
    ),
    "a part missing": (
        lambda f: sorted(f.glob("part-*"))[1].unlink(),
        "part-00001.snappy.parquet: is missing",
    ),
    "a file the run did not write": (
        lambda f: pq.write_table(pq.read_table(sorted(f.glob("part-*"))[0]), f / "part-9.parquet"),
        "part-9.parquet: is not one of the run's files",
    ),
    "not Parquet": (
        lambda f: (sorted(f.glob("part-*"))[0].write_bytes(b"not parquet"), relist(f)),
        "cannot be read as Parquet",
    ),
    "no manifest": (lambda f: (f / MANIFEST).unlink(), "has no _liftlab_manifest.json"),
    "propensity 0": (
        lambda f: rewrite_part(f, 1, lambda t: set_cell(t, "propensity", 5, 0.0)),
        "row 905: propensity 0.0 is not in (0, 1]",
    ),
    "propensity NaN": (
        lambda f: rewrite_part(f, 0, lambda t: set_cell(t, "propensity", 0, float("nan"))),
        "row 0: propensity nan is not in (0, 1]",
    ),
    "a bucket": (
        lambda f: rewrite_part(f, 2, lambda t: set_cell(t, "bucket", 3, "vip")),
        "row 1703: bucket 'vip' is not one of",
    ),
    "an incentive not approved": (
        lambda f: rewrite_part(f, 0, lambda t: set_cell(t, "incentive", 7, "gift_card")),
        "row 7: incentive 'gift_card' is not one of the run's arms",
    ),
    "an incentive id": (
        lambda f: rewrite_part(f, 0, lambda t: set_cell(t, "incentive_id", 7, 999_999)),
        "row 7: incentive_id",
    ),
    "a unit id twice": (
        lambda f: rewrite_part(f, 2, lambda t: set_cell(t, "unit_id", 10, "u-dup")),
        None,  # set below: the first part's unit 3 is copied
    ),
    "a null unit id": (
        lambda f: rewrite_part(f, 1, lambda t: set_cell(t, "unit_id", 0, None)),
        "row 900: unit_id None is null",
    ),
    "a row missing": (
        lambda f: rewrite_part(f, 0, _drop_last_row),
        "row 899: row 900 is out of sequence",
    ),
    "another strategy's rows": (
        lambda f: rewrite_part(f, 1, lambda t: set_cell(t, "strategy", 2, "other")),
        "row 902: strategy 'other' is not 'loaded'",
    ),
    "a column type": (
        lambda f: rewrite_part(
            f, 1, lambda t: t.set_column(5, "propensity", t.column(5).cast(pa.float32()))
        ),
        "column 'propensity' is float, expected double",
    ),
    "a malformed manifest": (
        lambda f: _edit_manifest(f, lambda m: m.update(rows="many")),
        "_liftlab_manifest.json: rows is missing or malformed",
    ),
    "a serving state of another model run": (
        lambda f: _edit_manifest(f, lambda m: m.update(online=_serving_state(m, run_offset=1))),
        "_liftlab_manifest.json: online is missing or malformed",
    ),
    "a serving state with a cost missing": (
        lambda f: _edit_manifest(
            f, lambda m: m.update(online={**_serving_state(m), "mean_cost": [1.0]})
        ),
        "_liftlab_manifest.json: online is missing or malformed",
    ),
    "a serving state whose spend curve rises with lambda": (
        lambda f: _edit_manifest(
            f,
            lambda m: m.update(
                online={
                    **_serving_state(m),
                    "spend_curve": {"lambda": [0.0, 1.0], "cost": [0.0, 2.0]},
                }
            ),
        ),
        "_liftlab_manifest.json: online is missing or malformed",
    ),
    "a frontier from more users than the run's": (
        lambda f: _edit_manifest(
            f,
            lambda m: m.update(
                frontier={
                    "points": [{"budget": 0, "value": 0, "spend": 0}] * 2,
                    "sample": {"users": 9, "of": 8},
                }
            ),
        ),
        "_liftlab_manifest.json: frontier is missing or malformed",
    ),
    "a frontier point without its spend": (
        lambda f: _edit_manifest(
            f,
            lambda m: m.update(
                frontier={
                    "points": [{"budget": 0.0, "value": 0.0}] * 2,
                    "sample": {"users": 8, "of": 8},
                }
            ),
        ),
        "_liftlab_manifest.json: frontier is missing or malformed",
    ),
    "a plan that does not add up": (
        lambda f: _edit_manifest(f, lambda m: m["plan"].update(spend=m["plan"]["spend"] + 1)),
        "the files hold spend",
    ),
}


def _serving_state(manifest, run_offset: int = 0) -> dict:  # type: ignore[no-untyped-def]
    """A well-formed serving state for ``manifest``'s plan (its model run moved by the offset)."""
    arms = manifest["inputs"]["arms"]
    return {
        "model_run_id": manifest["model_run_id"] + run_offset,
        "features": manifest["inputs"]["features"],
        "arms": arms,
        "calibration_shifts": [None] * len(arms),
        "objective": manifest["inputs"]["objective"],
        "mean_cost": [1.0] * len(arms),
    }


def _edit_manifest(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_and_rows_are_refused_and_nothing_is_written(
    db_session, online_strategy, population, tmp_path, case
) -> None:
    make_strategy(online_strategy, db_session)
    folder = tmp_path / "decisions"
    write_output(db_session, folder, population)
    corrupt, message = BAD_FILES[case]
    if case == "a unit id twice":
        unit = str(population["unit_id"].iloc[3])
        corrupt = lambda f: rewrite_part(f, 2, lambda t: set_cell(t, "unit_id", 10, unit))  # noqa: E731
        message = f"unit_id {unit!r} is decided twice (rows 3 and 1710)"
    corrupt(folder)
    with pytest.raises(ValidationError) as error:
        spark_load.load_decisions(db_session, KEY, str(folder))
    assert error.value.field == "--decisions"
    assert message in error.value.message, error.value.message
    assert "liftlab strategy run" in error.value.message  # the fix
    assert count(db_session) == 0 and strategies.get_strategy(db_session, KEY).batch_run == 0


def test_an_output_for_another_strategy_or_configuration_is_refused(
    db_session, online_strategy, population, tmp_path
) -> None:
    make_strategy(online_strategy, db_session)
    make_strategy(online_strategy, db_session, key="other")
    folder = tmp_path / "decisions"
    write_output(db_session, folder, population)

    def refused(key: str = KEY) -> str:
        with pytest.raises(ValidationError) as error:
            spark_load.load_decisions(db_session, key, str(folder), option="--output")
        assert error.value.field == "--output"
        assert count(db_session) == 0
        return error.value.message

    message = refused("other")
    assert "holds the decisions of strategy 'loaded', not 'other'" in message
    assert f"liftlab strategy load loaded --decisions {folder}" in message
    strategies.update_strategy(db_session, KEY, {"budget": 1200.0}, actor="test")
    message = refused()
    assert "planned with budget 1000.0, strategy 'loaded' now has 1200.0" in message
    assert "liftlab strategy set loaded --budget" in message
    strategies.update_strategy(db_session, KEY, {"budget": BUDGET}, actor="test")
    strategies.update_strategy(db_session, KEY, {"holdout_share": 0.2}, actor="test")
    assert "planned with holdout 0.1" in refused()
    strategies.update_strategy(db_session, KEY, {"holdout_share": 0.1}, actor="test")
    strategies.update_strategy(db_session, KEY, {"approved_incentives": ["coupon_5"]}, actor="t")
    assert "approved ['coupon_5', 'discount_20']" in refused()
    strategies.update_strategy(db_session, KEY, {"approved_incentives": ARMS}, actor="test")

    first = spark_load.load_decisions(db_session, KEY, str(folder))  # configured as planned
    assert first.batch_run == 1
    with pytest.raises(ConflictError) as again:
        spark_load.load_decisions(db_session, KEY, str(folder))
    assert again.value.field == "--decisions" and "current ledger already" in again.value.message
    assert count(db_session) == len(population)
    run_strategy(db_session, KEY, population.iloc[:100])  # batch run 2 supersedes the load
    assert spark_load.load_decisions(db_session, KEY, str(folder)).batch_run == 3  # back to it


def test_the_cli_loads_a_folder_and_the_ledger_shows_it(
    run, db_url, online_strategy, population, tmp_path
) -> None:
    from experiments.db import make_engine, make_session_factory

    folder = tmp_path / "decisions"
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        make_strategy(online_strategy, session)
        plan = write_output(session, folder, population)
    bad = tmp_path / "bad"
    bad.mkdir()
    refused = run("strategy", "load", KEY, "--decisions", str(bad))
    assert refused.exit_code == 1
    assert f"--decisions: {bad} has no _liftlab_manifest.json" in refused.output

    result = run("strategy", "load", KEY, "--decisions", str(folder))
    assert result.exit_code == 0, result.output
    assert f"loaded {len(population):,} decisions from {folder} as batch run 1" in result.output
    rows = json.loads(run("strategy", "ledger", KEY, "--format", "json").output)
    assert sum(r["users"] for r in rows) == len(population)
    assert sum(r["expected_cost"] for r in rows) == pytest.approx(plan["spend"], rel=1e-12)
    assert "batch run 1: planned spend" in run("strategy", "ledger", KEY).output
    with make_session_factory(engine).begin() as session:
        assert count(session) == len(population)
        assert strategies.get_strategy(session, KEY).batch_run == 1
    engine.dispose()
