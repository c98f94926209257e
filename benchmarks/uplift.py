"""Side-by-side benchmark of liftlab's UpliftModel against its peers, in one run.

Sections (``--sections``): ``ihdp`` (replications, official 672/75 split, sqrt(PEHE) in/out of
sample, ATE error), ``sim`` (the shop simulator, three incentives, per-arm sqrt(PEHE) of the
conversion and revenue effects), ``hillstrom`` (normalized Qini per arm, random 70/30 splits),
``speed`` (fit time, scoring throughput and peak memory at growing sizes, each in a subprocess).

    .venv/bin/python benchmarks/uplift.py --quick          # seconds-to-minutes smoke run
    .venv/bin/python benchmarks/uplift.py --reps 10 --write

Prints markdown tables (ratios are peer / liftlab: above 1 means liftlab is better for errors);
``--write`` also stores them with the command in ``docs/benchmarks/uplift.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.uplift_large import (  # noqa: E402
    bench_hillstrom,
    bench_sim,
    bench_speed,
    speed_worker,
)
from uplift import UpliftModel  # noqa: E402
from uplift.causal import make_peer  # noqa: E402
from uplift.metrics import ate_error, pehe  # noqa: E402


def _mean_se(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    se = arr.std(ddof=1) / np.sqrt(len(arr)) if len(arr) > 1 else 0.0
    return f"{arr.mean():.3f} ± {se:.3f}"


def _fit(name: str, X, t, y, control, seed: int, quick: bool):
    start = time.perf_counter()
    if name == "liftlab":
        params = {"max_epochs": 30} if quick else {}
        model = UpliftModel(random_state=seed, verbose=False, **params)
        model.fit(X, t, y, control=control)
    else:
        model = make_peer(name, random_state=seed).fit(X, t, y, control=control)
    return model, time.perf_counter() - start


# ---------------------------------------------------------------------------- IHDP
def bench_ihdp(reps: list[int], peers: list[str], quick: bool) -> str:
    from uplift.datasets import load_ihdp

    rows = {name: {"out": [], "in": [], "ate": [], "sec": 0.0} for name in ["liftlab", *peers]}
    for rep in reps:
        data = load_ihdp(rep)
        tr, te = data["train"], data["test"]
        for name, acc in rows.items():
            model, sec = _fit(name, tr["X"], tr["t"], tr["y"], 0, rep, quick)
            out = model.effect(te["X"])[:, 0]
            inn = model.effect(tr["X"])[:, 0]
            acc["out"].append(float(pehe(te["mu1"] - te["mu0"], out)[0]))
            acc["in"].append(float(pehe(tr["mu1"] - tr["mu0"], inn)[0]))
            acc["ate"].append(float(ate_error(tr["mu1"] - tr["mu0"], inn)[0]))
            acc["sec"] += sec
        print(
            f"  ihdp rep {rep}: " + ", ".join(f"{n} {a['out'][-1]:.3f}" for n, a in rows.items()),
            file=sys.stderr,
            flush=True,
        )
    base = np.mean(rows["liftlab"]["out"])
    lines = [
        f"IHDP replications {reps[0]}–{reps[-1]} ({len(reps)}), CFRNet 672/75 split",
        "",
        "| method | √PEHE out (mean ± s.e.) | median out | √PEHE in | ATE error in | out ratio "
        "peer/liftlab | fit s/rep |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, acc in rows.items():
        lines.append(
            f"| {name} | {_mean_se(acc['out'])} | {np.median(acc['out']):.3f} | "
            f"{_mean_se(acc['in'])} | {_mean_se(acc['ate'])} | {np.mean(acc['out']) / base:.2f} | "
            f"{acc['sec'] / len(reps):.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--sections", default="ihdp,sim,hillstrom,speed")
    p.add_argument("--reps", type=int, default=50, help="IHDP replications 1..N")
    p.add_argument(
        "--ihdp-peers",
        default="causal_forest,dr_learner,x_learner,s_learner,"
        "t_learner,catenets_snet,catenets_tarnet",
    )
    p.add_argument("--peers", default="causal_forest,dr_learner,x_learner,s_learner,t_learner")
    p.add_argument("--sim-users", type=int, default=50_000)
    p.add_argument("--hillstrom-splits", type=int, default=10)
    p.add_argument("--speed-sizes", default="10000,100000,1000000")
    p.add_argument("--speed-peer-max", type=int, default=100_000)
    p.add_argument("--write", action="store_true", help="write docs/benchmarks/uplift.md")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--speed-worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.speed_worker:
        speed_worker(args.speed_worker[0], int(args.speed_worker[1]), args.quick)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    sections, peers = split(args.sections), split(args.peers)
    out = []
    if args.quick:
        args.reps, args.sim_users, args.hillstrom_splits = 2, 3000, 1
        args.speed_sizes, peers = "2000", ["s_learner", "t_learner"]
        args.ihdp_peers = "s_learner,t_learner"
    if "ihdp" in sections:
        out.append(bench_ihdp(list(range(1, args.reps + 1)), split(args.ihdp_peers), args.quick))
    if "sim" in sections:
        out.append(bench_sim(args.sim_users, max(2000, args.sim_users // 5), peers, args.quick))
    if "hillstrom" in sections:
        out.append(
            bench_hillstrom(args.hillstrom_splits, peers, args.quick, 6000 if args.quick else None)
        )
    if "speed" in sections:
        sizes = [int(s) for s in split(args.speed_sizes)]
        out.append(bench_speed(sizes, peers, args.speed_peer_max, 1500, args.quick))
    text = "\n\n".join(out)
    print(text)
    if args.write:
        command = "  .venv/bin/python benchmarks/uplift.py " + " ".join(argv or sys.argv[1:])
        doc = ROOT / "docs" / "benchmarks" / "uplift.md"
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(f"# Uplift benchmark\n\nCommand:\n\n{command}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
