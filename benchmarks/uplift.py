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
    fit_method,
    speed_worker,
)
from uplift.causal import catenets_available  # noqa: E402
from uplift.metrics import ate_error, pehe  # noqa: E402


def _mean_se(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    se = arr.std(ddof=1) / np.sqrt(len(arr)) if len(arr) > 1 else 0.0
    return f"{arr.mean():.3f} ± {se:.3f}"


# ---------------------------------------------------------------------------- IHDP
def _ihdp_rep(rep: int, names: list[str], quick: bool, threads: int) -> dict[str, list[float]]:
    """One replication: every method's (√PEHE out, √PEHE in, ATE error in, ATE error out, CPU s)."""
    import torch

    from uplift.datasets import load_ihdp

    torch.set_num_threads(threads)
    data = load_ihdp(rep)
    tr, te = data["train"], data["test"]
    tau_tr, tau_te = tr["mu1"] - tr["mu0"], te["mu1"] - te["mu0"]
    result = {}
    for name in names:
        cpu = time.process_time()
        model, _ = fit_method(name, tr["X"], tr["t"], tr["y"], 0, rep, quick)
        cpu = time.process_time() - cpu
        out = model.effect(te["X"])[:, 0]
        inn = model.effect(tr["X"])[:, 0]
        result[name] = [
            float(pehe(tau_te, out)[0]),
            float(pehe(tau_tr, inn)[0]),
            float(ate_error(tau_tr, inn)[0]),
            float(ate_error(tau_te, out)[0]),
            cpu,
        ]
    return result


def bench_ihdp(
    reps: list[int], peers: list[str], quick: bool, jobs: int = 1, threads: int = 1
) -> str:
    """``jobs`` replications at a time, each in its own process (results in replication order)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    names = ["liftlab", *peers]
    keys = ("out", "in", "ate_in", "ate_out", "sec")
    rows = {name: {k: [] for k in keys} for name in names}
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_ihdp_rep, rep, names, quick, threads) for rep in reps]
        for rep, future in zip(reps, futures, strict=True):
            result = future.result()
            for name, values in result.items():
                for key, value in zip(keys, values, strict=True):
                    rows[name][key].append(value)
            print(
                f"  ihdp rep {rep}: " + ", ".join(f"{n} {v[0]:.3f}" for n, v in result.items()),
                file=sys.stderr,
                flush=True,
            )
    base = np.mean(rows["liftlab"]["out"])
    lines = [
        f"IHDP replications {reps[0]}–{reps[-1]} ({len(reps)}), CFRNet 672/75 split; √PEHE and "
        "absolute ATE error, out-of-sample (75 test users) and in-sample (672 training users)",
        "",
        "| method | √PEHE out (mean ± s.e.) | median out | √PEHE in (mean ± s.e.) | median in | "
        "ATE error out | ATE error in | out ratio peer/liftlab | fit CPU s/rep |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, acc in rows.items():
        lines.append(
            f"| {name} | {_mean_se(acc['out'])} | {np.median(acc['out']):.3f} | "
            f"{_mean_se(acc['in'])} | {np.median(acc['in']):.3f} | {_mean_se(acc['ate_out'])} | "
            f"{_mean_se(acc['ate_in'])} | {np.mean(acc['out']) / base:.2f} | "
            f"{np.mean(acc['sec']):.1f} |"
        )
    lines += [
        "",
        "Out-of-sample √PEHE per replication:",
        "",
        "| rep | " + " | ".join(rows) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    for i, rep in enumerate(reps):
        lines.append(f"| {rep} | " + " | ".join(f"{a['out'][i]:.3f}" for a in rows.values()) + " |")
    return "\n".join(lines)


PEERS = ["causal_forest", "dr_learner", "x_learner", "s_learner", "t_learner"]
CATENETS_PEERS = ["catenets_snet", "catenets_tarnet"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--sections", default="ihdp,sim,hillstrom,speed")
    p.add_argument("--reps", type=int, default=50, help="IHDP replications 1..N")
    p.add_argument(
        "--ihdp-peers",
        default=",".join(PEERS + (CATENETS_PEERS if catenets_available() else [])),
        help="peers on IHDP; the default adds catenets_snet,catenets_tarnet when catenets is "
        "installed (see uplift.causal.INSTALL_HINT)",
    )
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--sim-users", type=int, default=50_000)
    p.add_argument("--sim-seed", type=int, default=0, help="the shop's seed (assignment seed 1)")
    p.add_argument("--hillstrom-splits", type=int, default=10)
    p.add_argument("--speed-sizes", default="10000,100000,1000000")
    p.add_argument("--speed-peer-max", type=int, default=100_000)
    p.add_argument("--write", action="store_true", help="write docs/benchmarks/uplift.md")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--jobs", type=int, default=1, help="IHDP replications fitted at a time")
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
        reps = list(range(1, args.reps + 1))
        out.append(bench_ihdp(reps, split(args.ihdp_peers), args.quick, args.jobs, args.threads))
    if "sim" in sections:
        out.append(
            bench_sim(
                args.sim_users, max(2000, args.sim_users // 5), peers, args.quick, args.sim_seed
            )
        )
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
