"""Train the uplift model on a Parquet file with DistributedDataParallel, under ``torchrun``.

Layer: jobs (may import ``uplift`` and torch). Every process reads the same file and runs the same
fit (see ``uplift.distributed``); rank 0 writes the checkpoints, the model and ``run.json``::

    torchrun --nproc-per-node 2 -m experiments.jobs.train_distributed \\
        --data training.parquet --output runs/2026-11-28 --treatment arm --control none \\
        --outcomes conversion,revenue --epochs 60 --batch-size 1024

Started without torchrun (no ``RANK`` in the environment) it trains in this one process with the
plain trainer: the same command is the single-process baseline. Output folder::

    OUTPUT/model/          UpliftModel.save (metadata.json, weights.pt)
    OUTPUT/checkpoints/    best state of each ensemble member, written as it improves (DDP only)
    OUTPUT/run.json        world size, backend, rows, features, fit seconds, best epochs, scores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_EXCLUDED = {"unit_id", "variant", "orders"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.jobs.train_distributed",
        description="Fit UpliftModel with DDP (run under torchrun; alone it runs one process).",
    )
    parser.add_argument("--data", type=Path, required=True, help="training rows, Parquet")
    parser.add_argument("--output", type=Path, required=True, help="folder for model and run.json")
    parser.add_argument("--treatment", default="arm", help="column of arm labels (default: arm)")
    parser.add_argument("--control", default="none", help="label of the no-incentive arm")
    parser.add_argument(
        "--outcomes", default="conversion,revenue", help="outcome column(s), comma-separated"
    )
    parser.add_argument(
        "--features", default=None, help="feature columns, comma-separated (default: the rest)"
    )
    parser.add_argument("--architecture", default="auto")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs (default: by size)")
    parser.add_argument("--batch-size", type=int, default=None, help="global minibatch size")
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="the same on every rank")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--params",
        default="{}",
        help="more UpliftModel parameters as JSON, e.g. '{\"head\": [64]}'",
    )
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--timeout-s", type=float, default=600.0, help="collective timeout")
    return parser.parse_args(argv)


def model_params(args: argparse.Namespace) -> dict[str, Any]:
    try:
        extra = json.loads(args.params)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--params is not JSON ({exc}); pass e.g. '{{\"head\": [64]}}'") from exc
    if not isinstance(extra, dict):
        raise SystemExit("--params must be a JSON object of UpliftModel parameters")
    for key in ("representation", "head"):
        if isinstance(extra.get(key), list):
            extra[key] = tuple(extra[key])
    params: dict[str, Any] = {
        "architecture": args.architecture,
        "max_epochs": args.epochs,
        "batch_size": args.batch_size,
        "patience": args.patience,
        "device": args.device,
        "verbose": False,
        **extra,
        "random_state": args.seed,  # never None: every rank must draw the same seeds
    }
    return params


def read_training_rows(args: argparse.Namespace) -> tuple[Any, Any, Any, list[str]]:
    import pandas as pd

    if not args.data.exists():
        raise SystemExit(f"--data {args.data} not found; give a Parquet file of training rows")
    frame = pd.read_parquet(args.data)
    outcomes = [c.strip() for c in args.outcomes.split(",") if c.strip()]
    needed = [args.treatment, *outcomes]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SystemExit(f"{args.data} lacks column(s) {missing}; see --treatment and --outcomes")
    if args.features:
        features = [c.strip() for c in args.features.split(",") if c.strip()]
    else:
        skip = DEFAULT_EXCLUDED | set(needed)
        features = [c for c in frame.columns if c not in skip]
    y = frame[outcomes] if len(outcomes) > 1 else frame[outcomes[0]]
    return frame[features], frame[args.treatment].to_numpy(), y, features


def run(args: argparse.Namespace) -> dict[str, Any]:
    from uplift import UpliftModel

    X, treatment, y, features = read_training_rows(args)
    model = UpliftModel(**model_params(args))
    distributed = "RANK" in os.environ
    started = time.perf_counter()
    if distributed:
        from uplift.distributed import fit_distributed, init_from_env, shutdown

        context = init_from_env(args.device, timeout_s=args.timeout_s)
        checkpoints = args.checkpoint_dir or args.output / "checkpoints"
        try:
            fit_distributed(
                model, X, treatment, y, control=args.control, checkpoint_dir=checkpoints
            )
        finally:
            seconds = time.perf_counter() - started
            shutdown()
        is_main, world, backend = context.is_main, context.world_size, context.backend
    else:
        model.fit(X, treatment, y, control=args.control)
        seconds = time.perf_counter() - started
        is_main, world, backend = True, 1, "none"
    report = {
        "world_size": world,
        "backend": backend,
        "n_rows": int(len(X)),
        "features": features,
        "incentives": [str(label) for label in model.incentives_],
        "fit_seconds": round(seconds, 3),
        "best_epochs": [int(e) for e in model.best_epochs_],
        "validation_scores": [float(s) for s in model.validation_scores_],
    }
    if is_main:
        args.output.mkdir(parents=True, exist_ok=True)
        model.save(args.output / "model")
        (args.output / "run.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    report = run(parse_args(argv))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
