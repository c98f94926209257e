"""The large-data sections of the uplift benchmark: simulator, Hillstrom and speed (benchmarks).

Called by ``benchmarks/uplift.py`` (``--sections sim,hillstrom,speed``); each function returns
one markdown table comparing liftlab's ``UpliftModel`` with its peers measured in the same run.
The speed cells run in fresh processes (``benchmarks/uplift.py --speed-worker METHOD N``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from uplift import UpliftModel  # noqa: E402
from uplift.causal import make_peer  # noqa: E402
from uplift.metrics import pehe, per_arm, qini_auc_score  # noqa: E402

SIM_ARMS = ["none", "discount_10", "coupon_5", "free_shipping"]
UPLIFT_SCRIPT = Path(__file__).resolve().parent / "uplift.py"


def fit_method(name: str, X, t, y, control, seed: int, quick: bool, **liftlab):
    """Fit liftlab (defaults plus ``liftlab``; a short budget with ``quick``) or a peer;
    returns (model, seconds)."""
    start = time.perf_counter()
    if name == "liftlab":
        params = {"max_epochs": 30, **liftlab} if quick else liftlab
        model = UpliftModel(random_state=seed, verbose=False, **params)
        model.fit(X, t, y, control=control)
    else:
        import torch  # the peers' LightGBM gets liftlab's torch thread count

        peer = make_peer(name, random_state=seed, n_jobs=torch.get_num_threads())
        model = peer.fit(X, t, y, control=control)
    return model, time.perf_counter() - start


# ----------------------------------------------------------------------- simulator
def _progress(name: str, result: tuple[dict[str, np.ndarray], float]) -> None:
    errs, sec = result
    cells = ", ".join(f"{o} {np.round(v, 4).tolist()}" for o, v in errs.items())
    print(f"  sim {name}: {cells} ({sec:.0f} s)", file=sys.stderr, flush=True)


def in_sim_order(model, tau: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Effect columns in ``SIM_ARMS[1:]`` order (the truth's); models order them by sorted label.

    Before session 3 this benchmark compared the sorted columns (coupon_5, discount_10, ...) with
    the truth in SIM_ARMS order, so its first two arms were scored against each other's effects.
    """
    return tau[:, [model.incentives_.index(a) for a in SIM_ARMS[1:]]]


def bench_sim(n_train: int, n_test: int, peers: list[str], quick: bool, seed: int = 0) -> str:
    """√PEHE against the effect given each user's traits (the taste term ε averaged out, the
    definition's conditional effect), and, in the last columns, against each user's own effect
    with the ε the shop drew for them (every method's error grows by the same ε variance)."""
    from experiments.simulation import CATEGORICAL_FEATURES, NUMERIC_FEATURES, simulate_shop

    shop = simulate_shop(n_users=n_train + n_test, seed=seed)
    frame = shop.randomized_experiment(arms=SIM_ARMS, seed=1)
    cols = [shop.arms.index(a) - 1 for a in SIM_ARMS[1:]]
    outcomes = ("conversion", "revenue")
    test = np.arange(n_train, n_train + n_test)
    truth = {
        taste: {o: shop.true_effect(o, taste=taste)[test][:, cols] for o in outcomes}
        for taste in ("averaged", "drawn")
    }
    X = frame[list(NUMERIC_FEATURES) + list(CATEGORICAL_FEATURES)]
    train = np.arange(n_train)
    t = frame["treatment"].to_numpy()
    y = {"conversion": frame["converted"].to_numpy(float), "revenue": frame["revenue"].to_numpy()}
    effects: dict[str, tuple[dict[str, np.ndarray], float]] = {}
    errs: dict[str, dict[str, np.ndarray]] = {}  # against the averaged truth, as fits finish

    def record(name: str, taus: dict[str, np.ndarray], sec: float) -> None:
        effects[name] = (taus, sec)
        errs[name] = _errors(taus, truth["averaged"])
        _progress(name, (errs[name], sec))

    model, sec = fit_method(
        "liftlab",
        X.iloc[train],
        t[train],
        np.column_stack([y["conversion"], y["revenue"]])[train],
        "none",
        0,
        quick,
    )
    record(
        "liftlab (joint)",
        {o: in_sim_order(model, model.effect(X.iloc[test], outcome=o)) for o in outcomes},
        sec,
    )
    for name in peers:
        taus, total = {}, 0.0
        for o in outcomes:
            peer, sec = fit_method(name, X.iloc[train], t[train], y[o][train], "none", 0, quick)
            taus[o], total = in_sim_order(peer, peer.effect(X.iloc[test])), total + sec
        record(name, taus, total)
    taste_sd = {o: pehe(truth["drawn"][o], truth["averaged"][o]).mean() for o in outcomes}
    lines = [
        f"Simulator (shop seed {seed}): {n_train:,} training users, {n_test:,} test users, "
        f"arms {SIM_ARMS} "
        "(control first); out-of-sample √PEHE per arm against the effect given the user's traits "
        "(taste term averaged out); last columns: mean √MSE against each user's own effect with "
        f"the drawn taste term (its part alone: conversion {taste_sd['conversion']:.4f}, "
        f"revenue {taste_sd['revenue']:.3f})",
        "",
        "| method | conversion √PEHE per arm | revenue √PEHE per arm | mean conv | mean rev | "
        "ratio conv peer/liftlab | ratio rev | own-effect conv | own-effect rev | "
        "ratio own conv | ratio own rev | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    own = {n: _errors(taus, truth["drawn"]) for n, (taus, _) in effects.items()}
    base, base_own = errs["liftlab (joint)"], own["liftlab (joint)"]
    for name, (_, sec) in effects.items():
        c, r = errs[name]["conversion"], errs[name]["revenue"]
        oc, orv = own[name]["conversion"].mean(), own[name]["revenue"].mean()
        lines.append(
            f"| {name} | {' / '.join(f'{v:.4f}' for v in c)} | {' / '.join(f'{v:.3f}' for v in r)} "
            f"| {c.mean():.4f} | {r.mean():.3f} | {c.mean() / base['conversion'].mean():.2f} | "
            f"{r.mean() / base['revenue'].mean():.2f} | {oc:.4f} | {orv:.3f} | "
            f"{oc / base_own['conversion'].mean():.2f} | {orv / base_own['revenue'].mean():.2f} "
            f"| {sec:.0f} |"
        )
    return "\n".join(lines)


def _errors(taus: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {o: pehe(truth[o], tau) for o, tau in taus.items()}


# ----------------------------------------------------------------------- Hillstrom
def bench_hillstrom(splits: int, peers: list[str], quick: bool, subsample: int | None) -> str:
    from uplift.datasets import HILLSTROM_FEATURES, load_hillstrom

    data = load_hillstrom()
    if subsample:
        data = data.sample(subsample, random_state=0).reset_index(drop=True)
    X = data[HILLSTROM_FEATURES].astype({"mens": "int64", "womens": "int64", "newbie": "int64"})
    t = data["segment"].to_numpy()
    arms = ["Womens E-Mail", "Mens E-Mail"]
    scores: dict[str, dict[str, list[float]]] = {}
    for split in range(splits):
        rng = np.random.default_rng(split)
        test = rng.random(len(data)) < 0.3
        for outcome in ("visit", "conversion"):
            y = data[outcome].to_numpy(float)
            for name in ["liftlab", *peers]:
                # liftlab learns the conversion as a funnel, (visit, conversion) jointly; the
                # peers are single-outcome learners and fit the conversion alone
                funnel = name == "liftlab" and outcome == "conversion"
                target = np.column_stack([data["visit"].to_numpy(float), y]) if funnel else y
                kind = {"outcome": "funnel"} if funnel else {}
                model, _ = fit_method(
                    name, X[~test], t[~test], target[~test], "No E-Mail", split, quick, **kind
                )
                tau = (
                    model.effect(X[test], outcome="conversion") if funnel else model.effect(X[test])
                )
                order = [model.incentives_.index(a) for a in arms]
                q = per_arm(qini_auc_score, y[test], tau[:, order], t[test], "No E-Mail", arms)
                for arm in arms:
                    scores.setdefault(name, {}).setdefault(f"{outcome} {arm[:-7]}", []).append(
                        q[arm]
                    )
        cells = "; ".join(
            f"{name} " + " ".join(f"{per[k][-1]:.4f}" for k in per) for name, per in scores.items()
        )
        print(
            f"  hillstrom split {split} ({', '.join(scores[next(iter(scores))])}): {cells}",
            file=sys.stderr,
            flush=True,
        )
    keys = [f"{o} {a[:-7]}" for o in ("visit", "conversion") for a in arms]
    lines = [
        f"Hillstrom ({len(data):,} users), normalized Qini (scikit-uplift qini_auc_score) on "
        f"30% test, mean ± sd over {splits} random split(s)",
        "",
        "| method | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for name, per in scores.items():
        cells = [f"{np.mean(per[k]):.4f} ± {np.std(per[k]):.4f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if len(scores) > 1:
        lines.append(
            "| liftlab − best peer (paired, ± s.e.; splits won) | "
            + " | ".join(_paired_gap(scores, k) for k in keys)
            + " |"
        )
    return "\n".join(lines)


def _paired_gap(scores: dict[str, dict[str, list[float]]], key: str) -> str:
    """liftlab's Qini minus the best peer's (by mean) on the same splits, with its standard
    error over splits: the splits are shared, so the paired difference is the fair comparison."""
    peers = {name: per[key] for name, per in scores.items() if name != "liftlab"}
    best = max(peers, key=lambda name: np.mean(peers[name]))
    gap = np.asarray(scores["liftlab"][key]) - np.asarray(peers[best])
    se = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else float("nan")
    return f"{gap.mean():+.4f} ± {se:.4f} vs {best} ({int((gap > 0).sum())}/{len(gap)})"


# --------------------------------------------------------------------------- speed
SCORING_USERS = 500_000  # every speed cell scores the same fresh users
SCORING_PASSES = 3  # scoring throughput: the best of this many passes


def _speed_logit(num: np.ndarray, arm: np.ndarray | int) -> np.ndarray:
    return -2.0 + 0.5 * num[:, 0] + 0.3 * (np.asarray(arm) > 0) * num[:, 1] + 0.2 * arm


def speed_data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """n users, 36 numeric + 4 categorical features, 4 arms, binary conversion."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 36)).astype(np.float32)
    frame = pd.DataFrame(num, columns=[f"f{j}" for j in range(36)])
    for j, levels in enumerate((5, 8, 12, 30)):
        frame[f"c{j}"] = pd.Categorical.from_codes(
            rng.integers(0, levels, n), [f"l{i}" for i in range(levels)]
        )
    arm = rng.integers(0, 4, n)
    logit = _speed_logit(num, arm)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return frame, arm, y


def speed_true_effect(frame: pd.DataFrame) -> np.ndarray:
    """The known conversion effect of arms 1..3 versus arm 0, (n, 3)."""
    num = frame[["f0", "f1"]].to_numpy(np.float64)

    def p(a: int) -> np.ndarray:
        return 1 / (1 + np.exp(-_speed_logit(num, a)))

    return np.column_stack([p(a) - p(0) for a in (1, 2, 3)])


def speed_worker(method: str, n: int, quick: bool, threads: int = 2) -> None:
    import torch

    torch.set_num_threads(threads)
    X, arm, y = speed_data(n)
    start, cpu_start = time.perf_counter(), time.process_time()
    model = (
        UpliftModel(random_state=0, verbose=False, **({"max_epochs": 5} if quick else {}))
        if method == "liftlab"
        else make_peer(method, random_state=0, n_jobs=threads)
    ).fit(X, arm, y, control=0)
    fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    score_X = speed_data(2_000 if quick else SCORING_USERS, seed=1)[0]
    best = np.inf
    for _ in range(SCORING_PASSES):
        start = time.perf_counter()
        tau = model.effect(score_X)
        best = min(best, time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    error = pehe(speed_true_effect(score_X), tau)
    print(
        json.dumps(
            {
                "fit_s": fit_s,
                "fit_cpu_s": fit_cpu_s,
                "users_per_s": len(score_X) / best,
                "arms": tau.shape[1],
                "peak_mb": rss,
                "pehe": float(error.mean()),
            }
        )
    )


def bench_speed(
    sizes: list[int], peers: list[str], peer_max: int, timeout: int, quick: bool
) -> str:
    lines = [
        "Speed (synthetic: 36 numeric + 4 categorical features, 4 arms, binary outcome; "
        f"2 torch threads; each cell a fresh process; scoring: {SCORING_USERS:,} new users, "
        f"best of {SCORING_PASSES} passes of effect(X), pandas encoding included; √PEHE of the "
        "conversion effect on those users, mean over the 3 incentives)",
        "",
        "| method | users | fit s (CPU s) | scoring users/s | users×arms/s | peak RSS MB | √PEHE |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        for method in ["liftlab", *peers]:
            if method != "liftlab" and n > peer_max:
                lines.append(f"| {method} | {n:,} | not run (> {peer_max:,}) | | | | |")
                continue
            try:
                proc = subprocess.run(
                    [
                        sys.executable,
                        str(UPLIFT_SCRIPT),
                        "--speed-worker",
                        method,
                        str(n),
                        *(["--quick"] * quick),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=True,
                )
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                lines.append(
                    f"| {method} | {n:,} | {r['fit_s']:.1f} ({r['fit_cpu_s']:.0f}) | "
                    f"{r['users_per_s']:,.0f} | "
                    f"{r['users_per_s'] * r['arms']:,.0f} | {r['peak_mb']:.0f} | {r['pehe']:.4f} |"
                )
            except subprocess.TimeoutExpired:
                lines.append(f"| {method} | {n:,} | > {timeout} (stopped) | | | | |")
            except subprocess.CalledProcessError as exc:
                lines.append(f"| {method} | {n:,} | failed: {exc.stderr.strip()[-120:]} | | | | |")
            print(f"  speed {method} {n}: {lines[-1]}", file=sys.stderr, flush=True)
    return "\n".join(lines)
