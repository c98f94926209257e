"""`liftlab uplift train | score | tune | list` against a real database (both backends).

A small randomized experiment (control and two incentives, 600 users) is stored directly; tiny
networks (a few epochs) keep every test fast on a CPU. Train records who ran it, a data
fingerprint that follows the data, and the held-out metrics; score writes the model's effects;
tune is seeded and records its search; bad input is refused with nothing written; a run that
fails once its input is accepted is recorded as failed, in a transaction of its own, with no model.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select, update

from experiments.db import Assignment, Event, ModelRun, Variant, make_engine, make_session_factory
from experiments.services import catalog, demo_data, experiments
from experiments.simulation import simulate_shop

KEY = "offers"
ARMS = ["control", "discount_10", "free_shipping"]  # variant keys; the incentives share them
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
TINY = {"representation": [16], "head": [8], "max_epochs": 2, "n_estimators": 1, "device": "cpu"}


@pytest.fixture
def shop_data(db_url: str, tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """(population, its Parquet file) of an experiment KEY with its exposures and orders."""
    users = simulate_shop(n_users=600, seed=5).users
    path = tmp_path / "population.parquet"
    users.to_parquet(path)
    rng = np.random.default_rng(5)
    arm = rng.integers(0, len(ARMS), len(users))
    p_convert = 0.15 + np.array([0.0, 0.10, 0.05])[arm]
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        variants = [
            {"key": a, "weight": 1 / 3, **({"incentive": a} if a != "control" else {})}
            for a in ARMS
        ]
        spec = {"key": KEY, "name": "Offers", "metrics": {"primary": "conversion"}}
        experiments.create_experiment(session, {**spec, "variants": variants}, actor="test")
        experiments.transition(session, KEY, "running", actor="test")
        experiment = experiments.get_experiment(session, KEY)
        ids = [v.id for v in experiment.variants]
        units = users["unit_id"].tolist()
        session.execute(
            insert(Assignment),
            [
                {
                    "experiment_id": experiment.id,
                    "unit_id": u,
                    "variant_id": ids[a],
                    "first_exposure_at": T0,
                }
                for u, a in zip(units, arm, strict=True)
            ],
        )
        buyers = np.flatnonzero(rng.random(len(units)) < p_convert)
        session.execute(
            insert(Event),
            [
                {
                    "event_id": f"o{i}",
                    "unit_id": units[i],
                    "name": "order",
                    "value": float(rng.gamma(2.0, 30.0)),
                    "occurred_at": T0 + dt.timedelta(days=2),
                }
                for i in buyers
            ],
        )
    engine.dispose()
    return users, path


def model_runs(db_url: str) -> list[ModelRun]:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            session.expire_on_commit = False
            runs = list(session.scalars(select(ModelRun).order_by(ModelRun.id)))
            session.expunge_all()
            return runs
    finally:
        engine.dispose()


def test_train_records_params_fingerprint_user_and_metrics(run, db_url, shop_data) -> None:
    _, population = shop_data
    args = ("--experiment", KEY, "--population", str(population), "--seed", "1")
    trained = run("uplift", "train", *args, "--params-json", json.dumps(TINY), "--user", "ana")
    assert trained.exit_code == 0, trained.output
    (first,) = model_runs(db_url)
    assert f"model run {first.id}: succeeded" in trained.output and "held-out:" in trained.output
    assert first.status == "succeeded" and first.created_by == "ana"
    assert len(first.data_fingerprint) == 64 and int(first.data_fingerprint, 16) >= 0
    assert first.params["representation"] == [16] and first.params["random_state"] == 1
    assert first.metrics["n_train"] + first.metrics["n_test"] == 600
    assert set(first.metrics["qini"]) == {"discount_10", "free_shipping"}
    assert Path(first.artifact_path, "metadata.json").is_file()

    # `models train` is the same job: same data, same fingerprint; the OS user by default
    again = run("models", "train", KEY, "--population", str(population), "--epochs", "1")
    assert again.exit_code == 0, again.output
    second = model_runs(db_url)[-1]
    assert second.data_fingerprint == first.data_fingerprint
    assert second.created_by == getpass.getuser()

    engine = make_engine(db_url)  # one order's value changes: one revenue outcome changes
    with make_session_factory(engine).begin() as session:
        session.execute(update(Event).where(Event.event_id == "o1").values(value=Event.value + 1))
    engine.dispose()
    changed = run("uplift", "train", *args, "--params-json", json.dumps(TINY))
    assert changed.exit_code == 0, changed.output
    assert model_runs(db_url)[-1].data_fingerprint != first.data_fingerprint

    listed = json.loads(run("uplift", "list", "--format", "json").output)
    assert [r["created_by"] for r in listed] == [getpass.getuser(), getpass.getuser(), "ana"]
    assert listed[-1]["data_fingerprint"] == first.data_fingerprint
    table = run("models", "list").output
    assert "created_by" in table and "ana" in table and first.data_fingerprint[:12] in table


def test_score_writes_the_models_effects(run, db_url, shop_data, tmp_path) -> None:
    from uplift import UpliftModel

    users, population = shop_data
    args = ("--experiment", KEY, "--population", str(population), "--params-json")
    assert run("uplift", "train", *args, json.dumps(TINY)).exit_code == 0
    (trained,) = model_runs(db_url)
    out = tmp_path / "scores.parquet"

    def score(model, output):  # noqa: ANN001, ANN202
        args = ("--model", str(model), "--population", str(population), "--output", str(output))
        return run("uplift", "score", *args)

    scored = score(trained.id, out)
    assert scored.exit_code == 0, scored.output
    frame = pd.read_parquet(out)
    model = UpliftModel.load(trained.artifact_path)
    incentives = ["discount_10", "free_shipping"]
    assert list(model.incentives_) == incentives
    assert list(frame.columns) == ["unit_id"] + [
        f"effect_{t}__{i}" for t in ("conversion", "revenue") for i in incentives
    ]
    assert frame["unit_id"].tolist() == users["unit_id"].tolist()
    X = users[trained.metrics["features"]]
    for target in ("conversion", "revenue"):
        expected = model.effect(X, outcome=target)
        got = frame[[f"effect_{target}__{i}" for i in incentives]].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)

    by_path = tmp_path / "scores.csv"  # a model folder works too, and CSV
    assert score(trained.artifact_path, by_path).exit_code == 0
    np.testing.assert_allclose(pd.read_csv(by_path).iloc[:, 1:].to_numpy(), frame.iloc[:, 1:])

    lacking = tmp_path / "lacking.parquet"
    users.drop(columns=["device", "recency_days"]).to_parquet(lacking)
    bad_runs = {
        "no such run": ("--model", "999", "--population", str(population)),
        "not a model": ("--model", str(tmp_path), "--population", str(population)),
        "missing features": ("--model", str(trained.id), "--population", str(lacking)),
    }
    messages = {}
    for name, bad in bad_runs.items():
        target = tmp_path / f"{name.replace(' ', '_')}.parquet"
        result = run("uplift", "score", *bad, "--output", str(target))
        assert result.exit_code in (1, 2), (name, result.output)
        assert not target.exists()
        messages[name] = result.output
    assert "model run 999 not found" in messages["no such run"]
    assert "--model" in messages["not a model"] and "metadata.json" in messages["not a model"]
    assert "recency_days, device" in messages["missing features"]
    text = score(trained.id, tmp_path / "scores.txt")
    assert text.exit_code == 2 and "--output" in text.output and ".parquet or .csv" in text.output
    assert sorted(p.name for p in tmp_path.iterdir() if "scores" in p.name) == [
        "scores.csv",
        "scores.parquet",
    ]  # and no temporary file left behind


def tune(run, population: Path, seed: int):  # type: ignore[no-untyped-def]
    fixed = {"max_epochs": 2, "device": "cpu"}
    return run(
        "uplift",
        "tune",
        "--experiment",
        KEY,
        "--population",
        str(population),
        "--trials",
        "3",
        "--seed",
        str(seed),
        "--params-json",
        json.dumps(fixed),
        "--user",
        "tuner",
    )


def test_tune_is_seeded_and_records_its_search(run, db_url, shop_data) -> None:
    _, population = shop_data
    first = tune(run, population, seed=3)
    assert first.exit_code == 0, first.output
    assert "dr_loss" in first.output and "best trial" in first.output
    assert tune(run, population, seed=3).exit_code == 0
    assert tune(run, population, seed=4).exit_code == 0
    a, b, c = model_runs(db_url)
    history = [[t["params"] for t in r.params["tuning"]["history"]] for r in (a, b, c)]
    assert len(history[0]) == 3 and history[0] == history[1]
    assert history[0] != history[2]
    np.testing.assert_allclose(
        [t["value"] for t in a.params["tuning"]["history"]],
        [t["value"] for t in b.params["tuning"]["history"]],
    )
    tuning = a.params["tuning"]
    assert tuning["criterion"] == "dr_pseudo_outcome_loss" and tuning["trials"] == 3
    best = tuning["history"][[t["number"] for t in tuning["history"]].index(tuning["best_trial"])]
    assert tuning["best_value"] == min(t["value"] for t in tuning["history"]) == best["value"]
    for name, value in tuning["best_params"].items():  # the final model uses the best params
        assert a.params[name] == value
    assert a.status == "succeeded" and a.created_by == "tuner" and a.data_fingerprint
    assert a.data_fingerprint == c.data_fingerprint


def test_bad_input_is_refused_and_writes_nothing(run, db_url, shop_data, tmp_path) -> None:
    _, population = shop_data
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("not parquet")
    pop = ("--population", str(population))
    train = ("uplift", "train", "--experiment", KEY)
    cases = [
        (("uplift", "train", "--experiment", "nope", *pop), 1, "experiment 'nope' not found"),
        ((*train, "--population", str(tmp_path / "absent.parquet")), 2, "--population"),
        ((*train, "--population", str(garbage)), 1, "could not be read as Parquet"),
        ((*train, *pop, "--params-json", "{learning_rate: 1}"), 2, "not valid JSON"),
        ((*train, *pop, "--params-json", "[1]"), 2, "must be a JSON object"),
        ((*train, *pop, "--params-json", '{"lr": 0.1}'), 2, "key 'lr' is not an UpliftModel"),
        ((*train, *pop, "--params-json", '{"random_state": 1}'), 2, "set it with --seed"),
        ((*train, *pop, "--params-json", '{"head": "wide"}'), 2, "key 'head'"),
        (
            (*train, *pop, "--params-json", '{"criterion": "best", "max_epochs": 1}'),
            1,
            "criterion='best' is unknown",
        ),
        (("uplift", "tune", "--experiment", KEY, *pop, "--trials", "0"), 2, "--trials"),
        (("uplift", "tune", "--experiment", "nope", *pop, "--trials", "1"), 1, "not found"),
        (
            (
                "uplift",
                "tune",
                "--experiment",
                KEY,
                *pop,
                "--trials",
                "1",
                "--params-json",
                '{"dropout": 0.1}',
            ),
            2,
            "key 'dropout' is searched by tune",
        ),
        (
            ("uplift", "tune", "--experiment", KEY, *pop, "--trials", "1", "--timeout", "0"),
            2,
            "--timeout",
        ),
    ]
    for args, code, message in cases:
        result = run(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert model_runs(db_url) == []
    assert json.loads(run("uplift", "list", "--format", "json").output) == []
    assert not list(tmp_path.glob("instance/**/run-*"))


def artifacts(tmp_path: Path) -> list[str]:
    """Everything under the model folder of the CLI's instance (run folders and partial saves)."""
    return sorted(p.name for p in tmp_path.glob("instance/artifacts/models/*"))


def test_a_failed_training_run_is_recorded_without_a_model(
    run, db_url, shop_data, tmp_path
) -> None:
    _, population = shop_data
    engine = make_engine(db_url)  # every unit in the control arm: nothing to learn an effect of
    with make_session_factory(engine).begin() as session:
        control = session.scalar(select(Variant.id).where(Variant.key == "control"))
        session.execute(update(Assignment).values(variant_id=control))
    engine.dispose()
    args = ("--experiment", KEY, "--population", str(population), "--seed", "2")
    failed = run("uplift", "train", *args, "--params-json", json.dumps(TINY), "--user", "ana")

    assert failed.exit_code == 1, failed.output
    assert "Traceback" not in failed.output
    (row,) = model_runs(db_url)  # committed, although the command's transaction rolled back
    cause = "ValueError: treatment has only the control arm; an uplift model needs incentives"
    assert f"Error: model run {row.id} failed: {cause}" in failed.output
    assert row.status == "failed" and row.error == cause
    assert row.created_by == "ana" and len(row.data_fingerprint) == 64
    assert row.params["representation"] == [16] and row.params["random_state"] == 2
    assert row.artifact_path is None and row.metrics == {} and not row.promoted
    assert row.finished_at is not None and row.finished_at >= row.created_at
    assert artifacts(tmp_path) == []

    listed = json.loads(run("uplift", "list", "--format", "json").output)
    assert [(r["id"], r["status"], r["created_by"]) for r in listed] == [(row.id, "failed", "ana")]
    score = ("--population", str(population), "--output", str(tmp_path / "s.parquet"))
    refused = run("uplift", "score", "--model", str(row.id), *score)
    assert refused.exit_code == 2 and f"model run {row.id} is failed" in refused.output


def test_a_model_that_cannot_be_saved_leaves_a_failed_run_and_no_folder(
    run, db_url, shop_data, tmp_path, monkeypatch
) -> None:
    from uplift import UpliftModel

    _, population = shop_data
    save = UpliftModel.save

    def save_half(self, path):  # noqa: ANN001, ANN202 - the disk fills up halfway through
        save(self, path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(UpliftModel, "save", save_half)
    args = ("--experiment", KEY, "--population", str(population))
    failed = run("uplift", "train", *args, "--params-json", json.dumps(TINY), "--user", "ana")
    assert failed.exit_code == 1, failed.output
    assert "failed: OSError: [Errno 28] No space left on device" in failed.output
    tuned = tune(run, population, seed=3)  # tune's final training is the same job
    assert tuned.exit_code == 1, tuned.output
    assert "No space left on device" in tuned.output
    trained, searched = model_runs(db_url)
    assert [trained.status, searched.status] == ["failed", "failed"]
    assert trained.error == searched.error == "OSError: [Errno 28] No space left on device"
    assert searched.created_by == "tuner" and searched.params["tuning"]["trials"] == 3
    assert [trained.artifact_path, searched.artifact_path] == [None, None]
    assert artifacts(tmp_path) == []  # the half-saved folders were removed

    monkeypatch.setattr(UpliftModel, "save", save)  # the disk has room again
    again = run("uplift", "train", *args, "--params-json", json.dumps(TINY))
    assert again.exit_code == 0, again.output
    succeeded = model_runs(db_url)[-1]
    assert succeeded.status == "succeeded" and succeeded.id > searched.id
    assert succeeded.data_fingerprint == trained.data_fingerprint  # the same data
    assert artifacts(tmp_path) == [f"run-{succeeded.id}"]
    assert Path(succeeded.artifact_path, "metadata.json").is_file()


def test_a_search_whose_trial_fails_is_recorded_as_a_failed_run(
    run, db_url, shop_data, tmp_path, monkeypatch
) -> None:
    from uplift import UpliftModel

    _, population = shop_data
    fit, calls = UpliftModel.fit, []

    def fit_twice(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:  # the search's second trial runs out of memory
            raise MemoryError("cannot allocate 8 GiB")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(UpliftModel, "fit", fit_twice)
    tuned = tune(run, population, seed=3)
    assert tuned.exit_code == 1, tuned.output
    assert "Traceback" not in tuned.output
    (row,) = model_runs(db_url)
    assert f"model run {row.id} failed: MemoryError: cannot allocate 8 GiB" in tuned.output
    assert row.status == "failed" and row.error == "MemoryError: cannot allocate 8 GiB"
    assert row.created_by == "tuner" and len(row.data_fingerprint) == 64
    assert row.params["max_epochs"] == 2 and row.params["random_state"] == 3
    tuning = row.params["tuning"]
    assert tuning["trials"] == 1 and len(tuning["history"]) == 1
    assert tuning["failed_trial"] == 1 and "learning_rate" in tuning["failed_params"]
    assert row.artifact_path is None and artifacts(tmp_path) == []
