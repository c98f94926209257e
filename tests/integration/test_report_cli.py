"""``liftlab report KEY`` on a simulated experiment (both backends): JSON, HTML and CSV files that
agree with the stored report, the build time by phase in the appendix, one clear line and no file
for an unknown experiment or a bad option."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from experiments.db import make_engine
from experiments.reports.tables import fmt
from experiments.services import catalog, demo_data, experiments
from experiments.services.simulated_experiment import run_on_shop
from experiments.simulation import simulate_shop

KEY = "cli-report"
PHASES = {"statistics", "quality", "unit_outcomes", "uplift_training", "heterogeneity"}


@pytest.fixture
def stored_experiment(db_url: str, tmp_path: Path) -> Path:
    """A 2-arm experiment run for 4 simulated days; returns the population Parquet path."""
    shop = simulate_shop(n_users=1500, seed=3)
    engine = make_engine(db_url)
    with Session(engine) as session, session.begin():
        catalog.ensure_defaults(session, demo_data.default_incentive_specs())
        spec = {
            "key": KEY,
            "name": "CLI report",
            "variants": [
                {"key": "control", "weight": 0.5},
                {"key": "twenty", "weight": 0.5, "incentive": "discount_20"},
            ],
            "metrics": {"primary": "conversion", "secondary": ["revenue"]},
        }
        experiments.create_experiment(session, spec, actor="test")
        experiments.transition(session, KEY, "running", actor="test")
    with Session(engine) as session, session.begin():
        run_on_shop(
            session, shop, KEY, days=4, seed=3, start=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
        )
    engine.dispose()
    path = tmp_path / "population.parquet"
    shop.users.to_parquet(path)
    return path


@pytest.fixture
def run(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The shared CLI fixture (tests/integration/conftest.py), artifacts under this test's tmp."""
    monkeypatch.setenv("LIFTLAB_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    return run


@pytest.mark.slow  # three builds, each training a small uplift model
def test_report_command_writes_json_html_csv_that_agree(
    run, stored_experiment: Path, tmp_path: Path
) -> None:
    common = ["--population", str(stored_experiment), "--no-refute", "--no-cross-check"]
    written = {}
    for name, suffix in (("json", "json"), ("html", "html"), ("csv", "zip")):
        target = tmp_path / f"out.{suffix}"
        done = run("report", KEY, "--format", name, "--output", str(target), *common)
        assert done.exit_code == 0, done.output
        assert f"wrote {target}" in done.output and "built in" in done.output
        written[name] = target.read_bytes()
    report = json.loads(written["json"])
    stored = json.loads((tmp_path / "artifacts" / "reports" / f"{KEY}.json").read_text())
    # each run rebuilt the report: the last one (csv) is stored; the numbers are the same
    for section in ("average_effects", "data_quality"):
        assert stored[section] == report[section]
    assert set(report["appendix"]["timings_seconds"]) >= PHASES
    assert all(s >= 0 for s in report["appendix"]["timings_seconds"].values())
    model = report["heterogeneity"]["model"]
    assert model["source"] == "trained_for_report" and model["n_train"] > 0
    assert model["training_sample"].startswith("all ")  # far below the sampling threshold
    n_units = report["data_quality"]["n_units"]
    assert n_units == sum(report["data_quality"]["srm"]["observed"]) > 500
    html = written["html"].decode()
    assert html.startswith("<!doctype html>") and fmt(n_units) in html
    assert "Build time by phase" in html
    archive = zipfile.ZipFile(io.BytesIO(written["csv"]))
    effects = pd.read_csv(io.BytesIO(archive.read("average_effects.csv")))
    conversion = next(e for e in report["average_effects"] if e["metric"] == "conversion")
    row = effects[effects["metric"] == "conversion"].iloc[0]
    assert (row["n_control"], row["n_variant"]) == (
        conversion["n_control"],
        conversion["n_variant"],
    )
    assert row["difference"] == pytest.approx(conversion["difference"]["effect"], rel=1e-12)


def test_report_command_errors_name_the_fix(run, tmp_path: Path) -> None:
    target = tmp_path / "nope.json"
    missing = run("report", "nope", "--format", "json", "--output", str(target))
    assert missing.exit_code == 1 and "experiment 'nope' not found" in missing.output
    assert not target.exists()
    bad = run("report", "nope", "--k-min", "0", "--output", str(target))
    assert bad.exit_code == 2 and "--k-min" in bad.output
    unknown = run("report", "nope", "--format", "pdf")
    assert unknown.exit_code == 2 and "pdf" in unknown.output
    assert not target.exists()
