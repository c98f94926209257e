"""Causal report on simulated experiments with known truth (both backends).

Average effects cover the simulator's true effect and equal the statistics engine on the same
sufficient statistics; segment effects rank the planted segment effects in the true order; the
Qini, uplift and calibration numbers equal ``uplift.metrics`` on the model's predictions; HTML,
JSON and CSV agree; small segments are suppressed; no unit id appears anywhere; DP noise is
applied and stated. The slow test runs DoWhy and EconML: refutations pass on a randomized
experiment and the report flags one whose treatment was assigned by a covariate.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from experiments.analysis import experiment_statistics
from experiments.db import Assignment, Event
from experiments.reports import build_report, render
from experiments.reports.tables import CSV_ONLY, fmt, tables
from experiments.services import catalog, demo_data, experiments, results
from experiments.simulation import simulate_shop
from experiments.stats import adjust_family, sequential_test, welch_test

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
ARM = "discount_20"


def spec(key: str, n_star: int) -> dict:  # type: ignore[type-arg]
    return {
        "key": key,
        "name": f"Report test {key}",
        "hypothesis": "20% off raises conversion",
        "variants": [
            {"key": "control", "name": "No incentive", "weight": 0.5},
            {"key": ARM, "name": "20% off", "weight": 0.5, "incentive": ARM},
        ],
        "metrics": {"primary": "conversion", "secondary": ["revenue"]},
        "design": {"type": "sequential", "alpha": 0.05, "n_star": n_star, "cuped": True},
    }


def populate(
    session,  # type: ignore[no-untyped-def]
    shop,
    key: str,
    *,
    treated: np.ndarray,
    p_convert: np.ndarray,
    seed: int = 0,
    pre_orders: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:  # type: ignore[type-arg]
    """Store an experiment over all of ``shop``'s users; ``treated`` 0/1 per user, conversion
    probability ``p_convert`` per user. Returns the results of a refresh."""
    catalog.ensure_defaults(session, demo_data.default_incentive_specs())
    experiments.create_experiment(session, spec(key, len(treated)), actor="test")
    experiments.transition(session, key, "running", actor="test")
    experiment = experiments.get_experiment(session, key)
    variant_ids = [v.id for v in experiment.variants]
    rng = np.random.default_rng(seed)
    units = shop.users["unit_id"].to_numpy()
    hours = rng.integers(0, 24 * 7, len(units))
    exposed = [T0 + dt.timedelta(hours=int(h)) for h in hours]
    session.execute(
        insert(Assignment),
        [
            {
                "experiment_id": experiment.id,
                "unit_id": str(u),
                "variant_id": variant_ids[int(t)],
                "first_exposure_at": when,
            }
            for u, t, when in zip(units, treated, exposed, strict=True)
        ],
    )
    converted = rng.random(len(units)) < p_convert
    events = []
    for i in np.flatnonzero(converted):
        when = exposed[i] + dt.timedelta(hours=int(rng.integers(1, 24 * 20)))
        value = float(rng.gamma(2.0, 40.0))
        events.append((f"{key}-o{i}", units[i], "order", value, when))
    # pre-period orders (the CUPED covariate) and one event outside every window
    for i in np.flatnonzero(rng.random(len(units)) < 0.2):
        events.append((f"{key}-p{i}", units[i], "order", 30.0, exposed[i] - dt.timedelta(days=3)))
    events.append((f"{key}-late", units[0], "order", 10.0, exposed[0] + dt.timedelta(days=45)))
    session.execute(
        insert(Event),
        [
            {"event_id": e, "unit_id": str(u), "name": n, "value": v, "occurred_at": w}
            for e, u, n, v, w in events
        ],
    )
    session.flush()
    return results.refresh(session, key, actor="test", as_of=T0 + dt.timedelta(days=60))


def randomized(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng([seed, 1]).random(n) < 0.5).astype(int)


# --- helpers -------------------------------------------------------------------------------------


def all_formats(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    out = {}
    for name in ("html", "json"):
        out[name] = render(report, name)[0].decode()
    archive = zipfile.ZipFile(io.BytesIO(render(report, "csv")[0]))
    out["csv"] = "\n".join(archive.read(n).decode() for n in archive.namelist())
    return out


def assert_formats_agree(report: dict) -> None:  # type: ignore[type-arg]
    """Every CSV cell equals the JSON value; the HTML shows each cell as fmt(value)."""
    archive = zipfile.ZipFile(io.BytesIO(render(report, "csv")[0]))
    html = render(report, "html")[0].decode()
    assert json.loads(render(report, "json")[0]) == report
    for name, (columns, rows) in tables(report).items():
        frame = pd.read_csv(io.BytesIO(archive.read(f"{name}.csv")), keep_default_na=False)
        assert list(frame.columns) == columns, name
        assert len(frame) == len(rows), name
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                cell = frame.iloc[r, c]
                if value is None:
                    assert cell == "", (name, columns[c])
                elif isinstance(value, bool):
                    assert str(cell) == str(value), (name, columns[c])
                elif isinstance(value, int | float):
                    assert float(cell) == pytest.approx(value, rel=1e-12, abs=0), (name, columns[c])
                else:
                    assert str(cell) == str(value), (name, columns[c])
                if name not in CSV_ONLY:
                    assert fmt(value).replace("&", "&amp;") in html, (name, columns[c], fmt(value))


def assert_no_unit_ids(report: dict, units) -> None:  # type: ignore[no-untyped-def, type-arg]
    texts = all_formats(report)
    sample = list(units[:: max(1, len(units) // 300)]) + list(units[-5:])
    for unit in sample:
        for name, text in texts.items():
            assert str(unit) not in text, (name, unit)


# --- tests ---------------------------------------------------------------------------------------


def test_report_average_effects_cover_truth_and_equal_the_engine(db_session) -> None:
    shop = simulate_shop(n_users=6000, seed=5)
    treated = randomized(shop.n_users, 5)
    arm = shop.arms.index(ARM)
    p = np.where(treated == 1, shop.p_convert[:, arm], shop.p_convert[:, 0])
    snapshot = populate(db_session, shop, "rep-avg", treated=treated, p_convert=p, seed=5)
    report = build_report(db_session, "rep-avg")

    effect = next(e for e in report["average_effects"] if e["metric"] == "conversion")
    true_lift = shop.p_convert[:, arm].mean() / shop.p_convert[:, 0].mean() - 1
    true_difference = shop.true_effect("conversion")[:, arm - 1].mean()
    for block in (effect["unadjusted"]["fixed"], effect["unadjusted"]["sequential"]):
        assert block["ci"][0] < true_lift < block["ci"][1]
    assert effect["difference"]["ci"][0] < true_difference < effect["difference"]["ci"][1]
    print(f"true lift {true_lift:.4f}, report {effect['unadjusted']['fixed']}")

    # the same numbers from the engine on the database's sufficient statistics
    experiment = experiments.get_experiment(db_session, "rep-avg")
    rows = [r for r in experiment_statistics(db_session, experiment.id)]
    by = {(r.metric_key, r.variant_key): r for r in rows}
    family = {}
    for e in report["average_effects"]:
        c, t = by[(e["metric"], "control")], by[(e["metric"], e["variant"])]
        assert (e["n_control"], e["n_variant"]) == (c.n, t.n)
        for cuped in (False, True):
            block = e["cuped" if cuped else "unadjusted"]
            fixed = welch_test(
                c.to_statistic(cuped=cuped), t.to_statistic(cuped=cuped), relative=True
            )
            seq = sequential_test(
                c.to_statistic(cuped=cuped),
                t.to_statistic(cuped=cuped),
                relative=True,
                tuning_n=shop.n_users,
            )
            assert block["fixed"]["effect"] == fixed.effect
            assert block["fixed"]["ci"] == [fixed.ci_low, fixed.ci_high]
            assert block["fixed"]["p_value"] == fixed.p_value
            assert block["sequential"]["ci"] == [seq.ci_low, seq.ci_high]
            assert block["sequential"]["p_value"] == seq.p_value
        family[(e["variant"], e["metric"])] = e["unadjusted"]["fixed"]["p_value"]
        stored = next(
            v
            for m in snapshot["metrics"]
            if m["metric"] == e["metric"]
            for v in m["variants"]
            if v["variant"] == e["variant"]
        )
        assert e["p_value_adjusted_sequential"] == stored["p_value_adjusted"]
    holm = adjust_family(family, "holm")
    for e in report["average_effects"]:
        assert e["p_value_adjusted_fixed"] == pytest.approx(holm[(e["variant"], e["metric"])])
    # CUPED narrows the interval (the pre-period orders are a covariate of conversion)
    assert report["data_quality"]["srm"]["observed"] == [
        by[("conversion", "control")].n,
        by[("conversion", ARM)].n,
    ]
    windows = report["data_quality"]["events_outside_windows"]
    assert windows["after_window"] == 1 and windows["before_first_exposure"] > 0
    assert report["unavailable"]["heterogeneity"].startswith("no population")
    assert_formats_agree(report)
    assert_no_unit_ids(report, shop.users["unit_id"].to_numpy())


PLANTED = {"mobile": 0.20, "tablet": 0.10, "desktop": 0.0}  # true effect on conversion by device
SMALL_MODEL = {
    "architecture": "tarnet",
    "representation": (32, 32),
    "head": (16,),
    "criterion": "factual",
    "max_epochs": 25,
    "batch_size": 512,
    "learning_rate": 3e-3,
    "device": "cpu",
}


def planted_experiment(session, key: str, tmp_path: Path, n: int = 4000):  # type: ignore[no-untyped-def]
    """Conversion 0.10, plus PLANTED[device] when treated; a small model run on it."""
    from experiments.jobs.train import train_on_experiment

    shop = simulate_shop(n_users=n, seed=9)
    treated = randomized(n, 9)
    lift = shop.users["device"].map(PLANTED).to_numpy(dtype=float)
    populate(session, shop, key, treated=treated, p_convert=0.10 + lift * treated, seed=9)
    run = train_on_experiment(session, key, shop.users, tmp_path, params=SMALL_MODEL, seed=1)
    return shop, run


@pytest.mark.slow  # trains a small uplift model (about a minute on two busy cores)
def test_report_segments_rank_truth_and_equal_uplift_metrics(db_session, tmp_path: Path) -> None:
    from experiments.jobs.training_data import training_frame
    from uplift import UpliftModel, metrics

    shop, run = planted_experiment(db_session, "rep-seg", tmp_path)
    report = build_report(
        db_session, "rep-seg", population=shop.users, refute=False, cross_check=False
    )
    het = report["heterogeneity"]
    assert het["model"]["source"] == "model_run" and het["model"]["model_run_id"] == run.id
    device = {s["level"]: s for s in het["segments"] if s["feature"] == "device"}
    truth = sorted(PLANTED, key=PLANTED.get, reverse=True)
    assert sorted(device, key=lambda k: device[k]["observed_effect"], reverse=True) == truth
    assert sorted(device, key=lambda k: device[k]["model_effect"], reverse=True) == truth
    for level, segment in device.items():  # each observed interval covers its planted effect
        assert segment["observed_ci"][0] < PLANTED[level] < segment["observed_ci"][1]

    # Qini, uplift and calibration: uplift.metrics on the run's predictions for the same units
    model = UpliftModel.load(run.artifact_path)
    frame = training_frame(db_session, "rep-seg", shop.users).sort_values("unit_id")
    score = model.effect(frame[run.metrics["features"]], outcome="conversion")[:, 0]
    y = frame["conversion"].to_numpy()
    t = (frame["arm"] == ARM).to_numpy().astype(int)
    curves = het["curves"][0]
    assert curves["qini_auc"] == metrics.qini_auc_score(y, score, t)
    assert curves["uplift_auc"] == metrics.uplift_auc_score(y, score, t)
    assert curves["uplift_at_30"] == metrics.uplift_at_k(y, score, t, k=0.3)
    x, q = metrics.qini_curve(y, score, t)
    index = curves["qini_curve"]["index"]
    assert curves["qini_curve"]["x"] == x[index].tolist()
    assert curves["qini_curve"]["y"] == q[index].tolist()
    order = np.argsort(-score, kind="mergesort")
    top = order[: len(order) // 10 + (1 if len(order) % 10 else 0)]
    first = het["calibration"][0]
    assert first["decile"] == 1
    assert first["predicted_effect"] == pytest.approx(score[top].mean(), rel=1e-12)
    assert first["n_arm"] == int(t[top].sum())
    distribution = het["effect_distribution"][0]
    assert distribution["quantiles"]["q50"] == pytest.approx(float(np.median(score)), rel=1e-12)
    assert_formats_agree(report)
    assert_no_unit_ids(report, shop.users["unit_id"].to_numpy())

    # k-anonymity: with k = 250 the tablet segment (about 8 % of 4,000 users, split in two arms)
    # is suppressed in every format; no exported row has a count below k
    strict = build_report(
        db_session, "rep-seg", population=shop.users, k_min=250, refute=False, cross_check=False
    )
    rows = strict["heterogeneity"]["segments"] + strict["heterogeneity"]["calibration"]
    tablet = next(s for s in rows if s.get("level") == "tablet")
    assert (
        tablet["suppressed"] and tablet["n_control"] is None and tablet["observed_effect"] is None
    )
    assert all(min(r["n_control"], r["n_arm"]) >= 250 for r in rows if not r["suppressed"])
    hidden = device["tablet"]
    for text in all_formats(strict).values():
        assert repr(hidden["observed_effect"]) not in text
        assert fmt(hidden["observed_effect"]) not in text
    assert_formats_agree(strict)

    # differential privacy: counts move by Laplace noise of the stated scale, and it is said
    noisy = build_report(
        db_session,
        "rep-seg",
        population=shop.users,
        dp_epsilon=0.5,
        refute=False,
        cross_check=False,
    )
    dp = noisy["privacy"]["differential_privacy"]
    assert dp["mechanism"] == "laplace" and dp["count_noise_scale"] == 2.0
    plain = {(s["feature"], s["level"]): s for s in report["heterogeneity"]["segments"]}
    moved = [
        s["n_control"] - plain[(s["feature"], s["level"])]["n_control"]
        for s in noisy["heterogeneity"]["segments"]
        if not s["suppressed"]
    ]
    assert any(m != 0 for m in moved) and max(abs(m) for m in moved) < 40 * 2.0
    assert "Laplace noise with epsilon = 0.5" in render(noisy, "html")[0].decode()


@pytest.mark.slow  # DoWhy refuters and two EconML estimators, twice
@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)  # model work, not SQL
def test_report_refutations_pass_when_randomized_and_flag_covariate_assignment(
    db_session,
) -> None:
    shop = simulate_shop(n_users=3000, seed=21)
    arm = shop.arms.index(ARM)

    def outcome(treated: np.ndarray) -> np.ndarray:
        return np.where(treated == 1, shop.p_convert[:, arm], shop.p_convert[:, 0])

    treated = randomized(shop.n_users, 21)
    populate(db_session, shop, "rep-ok", treated=treated, p_convert=outcome(treated), seed=21)
    good = build_report(
        db_session,
        "rep-ok",
        population=shop.users,
        uplift_params=SMALL_MODEL,
        seed=3,
        refute_simulations=5,
    )
    assert good["refutations"]["passed"], good["refutations"]
    # randomized: no SRM, no failed refutation; chance imbalance stays small (3,000 users)
    assert not [f for f in good["flags"] if not f.startswith("covariate imbalance")]
    assert (
        max(abs(r["smd"]) for r in good["data_quality"]["balance"] if r["smd"] is not None) < 0.15
    )
    tests = {t["test"]: t for t in good["refutations"]["arms"][0]["tests"]}
    assert set(tests) == {
        "placebo_treatment",
        "random_common_cause",
        "data_subset",
        "randomization_check",
    }
    assert abs(tests["placebo_treatment"]["new_effect"]) < abs(
        tests["placebo_treatment"]["estimated_effect"]
    )
    check = good["cross_check"]["arms"][0]
    observed = check["observed_difference"]
    for name in ("dr_learner_average_effect", "ours_average_effect"):
        assert abs(check[name] - observed) < 0.05, (name, check)
    assert check["rank_agreement_spearman"] is not None
    html = render(good, "html")[0].decode()
    assert "Refutations passed" in html

    # broken: the frequent buyers got the discount, analyzed as if randomized
    frequency = shop.users["frequency"].to_numpy()
    biased = (frequency > np.median(frequency)).astype(int)
    populate(db_session, shop, "rep-bad", treated=biased, p_convert=outcome(biased), seed=22)
    bad = build_report(
        db_session,
        "rep-bad",
        population=shop.users,
        uplift_params=SMALL_MODEL,
        seed=3,
        cross_check=False,
        refute_simulations=5,
    )
    assert not bad["refutations"]["passed"]
    failed = [t["test"] for t in bad["refutations"]["arms"][0]["tests"] if not t["passed"]]
    assert "randomization_check" in failed
    assert any(f.startswith("covariate imbalance") and "frequency" in f for f in bad["flags"])
    smd = {r["feature"]: r["smd"] for r in bad["data_quality"]["balance"] if r["level"] is None}
    assert smd["frequency"] > 0.5
    assert "Refutations FAILED" in render(bad, "html")[0].decode()
