"""DDP training (gloo, CPU) against the single-process trainer, on a simulated 3-arm problem.

Tolerance, and why: with W dividing the batch size, the W shards of each DDP step are exactly the
rows of the single-process minibatch and DDP's gradient average equals the single-process
gradient of the weighted-mean loss (see ``uplift.distributed``). The two runs therefore differ only
by floating-point summation order; measured on this problem the effects differed by at most
1.2e-6 (20 epochs, 4,000 users). The test asks for a mean absolute difference below 1e-3 (0.1% of
the effects' spread, which is about 1) and a correlation above 0.9999: three orders of magnitude
above the rounding noise, yet far below any real divergence (a different minibatch order alone
moves effects by ~0.05 here). With one process the DDP path must be bit-identical.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist

from uplift import UpliftModel
from uplift.distributed import DistributedTrainer, current_context, fit_distributed
from uplift.metrics import pehe

torch.set_num_threads(1)  # 2 shared cores: one thread per process, as torchrun sets

REPO = Path(__file__).resolve().parents[2]
PARAMS = {
    "representation": (32, 32),
    "head": (16,),
    "criterion": "factual",
    "max_epochs": 8,
    "batch_size": 100,  # even: the two shards of a step are the single-process minibatch
    "patience": 100,
    "device": "cpu",
    "verbose": False,
    "random_state": 0,
}
MEAN_ABS_TOLERANCE = 1e-3
CORRELATION_FLOOR = 0.9999


def simulate(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Arms none/a/b with effects tau_a = 1 + x0, tau_b = -0.5 x1; returns rows and true effects."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    arm = np.array(["none", "a", "b"])[rng.integers(0, 3, n)]
    tau = np.column_stack([1.0 + X[:, 0], -0.5 * X[:, 1]])
    y = X[:, 0] + 0.5 * X[:, 2] + (arm == "a") * tau[:, 0] + (arm == "b") * tau[:, 1]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(4)])
    frame["arm"] = arm
    frame["y"] = y + rng.normal(scale=0.5, size=n)
    return frame, tau


FEATURES = ["x0", "x1", "x2", "x3"]


def single_process_effects(frame: pd.DataFrame) -> np.ndarray:
    model = UpliftModel(**PARAMS).fit(
        frame[FEATURES], frame["arm"].to_numpy(), frame["y"], control="none"
    )
    return model.effect(frame[FEATURES])


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_one_process_group_is_bit_identical_to_the_plain_trainer(tmp_path: Path) -> None:
    frame, _ = simulate(600)
    expected = single_process_effects(frame)
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        context = current_context()
        model = fit_distributed(
            UpliftModel(**PARAMS),
            frame[FEATURES],
            frame["arm"].to_numpy(),
            frame["y"],
            control="none",
            checkpoint_dir=tmp_path / "checkpoints",
            context=context,
        )
    finally:
        dist.destroy_process_group()
    assert context.world_size == 1 and context.backend == "gloo"
    np.testing.assert_array_equal(model.effect(frame[FEATURES]), expected)
    checkpoints = list((tmp_path / "checkpoints").glob("member-seed*.pt"))
    assert len(checkpoints) == 1
    saved = torch.load(checkpoints[0], weights_only=True)
    assert saved["epoch"] == model.best_epochs_[0]
    assert saved["score"] == pytest.approx(model.validation_scores_[0])


def test_distributed_trainer_needs_a_process_group() -> None:
    from uplift.trainer import TrainConfig

    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_from_env"):
        DistributedTrainer(TrainConfig(max_epochs=1, batch_size=8, patience=1))


@pytest.mark.slow
def test_torchrun_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    frame, tau = simulate(2400)
    data = tmp_path / "train.parquet"
    frame.to_parquet(data)
    params = {k: v for k, v in PARAMS.items() if k not in ("max_epochs", "batch_size", "patience")}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc-per-node=2",
        "--master-addr=127.0.0.1",
        f"--master-port={free_loopback_port()}",
        "-m",
        "experiments.jobs.train_distributed",
        f"--data={data}",
        f"--output={tmp_path / 'out'}",
        "--treatment=arm",
        "--control=none",
        "--outcomes=y",
        f"--epochs={PARAMS['max_epochs']}",
        f"--batch-size={PARAMS['batch_size']}",
        f"--patience={PARAMS['patience']}",
        "--device=cpu",
        "--seed=0",
        f"--params={json.dumps(params)}",
    ]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert (run["world_size"], run["backend"], run["n_rows"]) == (2, "gloo", 2400)
    assert len(list((tmp_path / "out" / "checkpoints").glob("member-seed*.pt"))) == 1

    distributed = UpliftModel.load(tmp_path / "out" / "model").effect(frame[FEATURES])
    single = single_process_effects(frame)
    mean_abs = np.abs(distributed - single).mean(axis=0)
    correlation = [np.corrcoef(distributed[:, j], single[:, j])[0, 1] for j in range(2)]
    assert (mean_abs < MEAN_ABS_TOLERANCE).all(), mean_abs
    assert min(correlation) > CORRELATION_FLOOR, correlation
    # and both learned the effects (not two identical failures)
    baseline = pehe(tau, np.broadcast_to(tau.mean(axis=0), tau.shape))
    assert (pehe(tau, distributed) < 0.6 * baseline).all(), (pehe(tau, distributed), baseline)
