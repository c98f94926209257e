"""The `liftlab` CLI against a real database (both backends): every listing takes --format json,
errors are one clear line with a non-zero exit, nothing half-written."""

from __future__ import annotations

import json


def test_users_create_list_and_errors(run) -> None:
    created = run("users", "create", "--email", "Ana@Example.com", "--role", "analyst")
    assert created.exit_code == 0, created.output
    assert "password (shown once):" in created.output
    listed = json.loads(run("users", "list", "--format", "json").output)
    assert [(u["email"], u["role"]) for u in listed] == [("ana@example.com", "analyst")]
    again = run("users", "create", "--email", "ana@example.com", "--role", "viewer")
    assert again.exit_code == 1 and "already exists" in again.output
    bad = run("users", "create", "--email", "x@y.z", "--role", "boss")
    assert bad.exit_code == 2 and "boss" in bad.output
    short = run("users", "create", "--email", "b@y.z", "--role", "viewer", "--password", "short")
    assert short.exit_code == 1 and "password: must be at least 12" in short.output
    assert len(json.loads(run("users", "list", "--format", "json").output)) == 1


def test_experiment_lifecycle_from_the_command_line(run, tmp_path) -> None:
    assert run("incentives", "load-defaults").exit_code == 0
    spec = tmp_path / "exp.json"
    spec.write_text(
        json.dumps(
            {
                "key": "cli-exp",
                "name": "CLI",
                "metrics": {"primary": "conversion"},
                "variants": [
                    {"key": "control", "weight": 0.5},
                    {"key": "ten", "weight": 0.5, "incentive": "discount_10"},
                ],
            }
        )
    )
    assert run("experiments", "create", "--file", str(spec)).exit_code == 0
    assert run("experiments", "start", "cli-exp").exit_code == 0
    shown = json.loads(run("experiments", "show", "cli-exp", "--format", "json").output)
    assert shown["status"] == "running" and [v["key"] for v in shown["variants"]] == [
        "control",
        "ten",
    ]
    wrong = run("experiments", "conclude", "cli-exp", "--winner", "ten")
    assert wrong.exit_code == 1 and "running experiment can move to stopped" in wrong.output
    assert run("experiments", "stop", "cli-exp").exit_code == 0
    assert run("experiments", "conclude", "cli-exp", "--winner", "ten").exit_code == 0
    listed = json.loads(run("experiments", "list", "--format", "json").output)
    assert listed[0]["status"] == "concluded" and listed[0]["winner"] == "ten"
    strategies = json.loads(run("strategy", "list", "--format", "json").output)
    assert strategies[0]["key"] == "from-cli-exp" and strategies[0]["fallback"] == "discount_10"
    missing = run("experiments", "show", "nope")
    assert missing.exit_code == 1 and "experiment 'nope' not found" in missing.output
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    assert run("experiments", "create", "--file", str(bad_json)).exit_code == 1


def test_incentives_list_formats(run) -> None:
    run("incentives", "load-defaults")
    table = run("incentives", "list").output
    assert table.splitlines()[0].split()[:3] == ["key", "name", "kind"]
    rows = json.loads(run("incentives", "list", "--format", "json").output)
    assert {r["kind"] for r in rows} >= {
        "percent_discount",
        "fixed_coupon",
        "free_shipping",
        "gift",
    }
