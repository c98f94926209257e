"""`liftlab strategy experiment` and `liftlab strategy served` against a real database (both
backends): the strategy vs its winner vs holdout as a draft experiment, and what was served."""

from __future__ import annotations

import json

from experiments.db import make_engine, make_session_factory
from experiments.services.strategy_experiments import decide_in_experiment


def test_strategy_experiment_from_the_command_line(run, db_url, tmp_path) -> None:
    assert run("incentives", "load-defaults").exit_code == 0
    spec = tmp_path / "exp.json"
    spec.write_text(
        json.dumps(
            {
                "key": "first",
                "name": "First",
                "metrics": {"primary": "conversion"},
                "variants": [
                    {"key": "control", "weight": 0.5},
                    {"key": "ten", "weight": 0.5, "incentive": "discount_10"},
                ],
            }
        )
    )
    for args in (
        ("experiments", "create", "--file", str(spec)),
        ("experiments", "start", "first"),
        ("experiments", "stop", "first"),
        ("experiments", "conclude", "first", "--winner", "ten"),
    ):
        assert run(*args).exit_code == 0
    bad = run("strategy", "experiment", "ab", "--strategy", "from-first", "--weights", "a,b")
    assert bad.exit_code == 2 and "--weights" in bad.output
    unknown = run("strategy", "experiment", "ab", "--strategy", "nope")
    assert unknown.exit_code == 1 and "strategy 'nope' not found" in unknown.output
    uneven = run(
        "strategy", "experiment", "ab", "--strategy", "from-first", "--weights", "0.5,0.5,0.5"
    )
    assert uneven.exit_code == 1 and "sum to 1" in uneven.output
    created = run(
        "strategy", "experiment", "ab", "--strategy", "from-first", "--weights", "0.2,0.3,0.5"
    )
    assert created.exit_code == 0, created.output
    assert "holdout 0.2, winner 0.3, targeted 0.5" in created.output
    shown = json.loads(run("experiments", "show", "ab", "--format", "json").output)
    assert [(v["incentive"], v["strategy"]) for v in shown["variants"]] == [
        (None, None),
        ("discount_10", None),
        (None, "from-first"),
    ]
    assert json.loads(run("strategy", "served", "ab", "--format", "json").output) == []
    assert run("strategy", "set", "from-first", "--status", "active").exit_code == 0
    assert run("experiments", "start", "ab").exit_code == 0
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        for i in range(30):
            decide_in_experiment(session, "ab", f"u{i}")
    engine.dispose()
    served = json.loads(run("strategy", "served", "ab", "--format", "json").output)
    assert sum(r["units"] for r in served) == 30
    assert {r["variant"] for r in served} <= {"holdout", "winner", "targeted"}
    winner_rows = [r for r in served if r["variant"] == "winner"]
    assert all(r["incentive"] == "discount_10" and r["bucket"] == "exploit" for r in winner_rows)
