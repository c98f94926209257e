"""DDP training (gloo, CPU) against the single-process trainer, on a simulated 3-arm problem.

Tolerance, and why: the W shards of each DDP step are exactly the rows of the single-process
minibatch, and each rank's loss is scaled by its share of the minibatch's weight, so DDP's
gradient average equals the single-process gradient of the weighted-mean loss (see
``uplift.distributed``). The two runs differ only by floating-point summation order: measured on
this problem (2,430 users, 8 epochs) the effects' mean absolute difference was about 1e-7 (max
9.5e-7). The test asks for a mean absolute difference below 1e-4 and a correlation above 0.99999:
a thousand times the rounding noise, yet tight enough to catch a biased split. Averaging the
shards' losses unweighted (as padding with torch's DistributedSampler does) moved the effects by
3.5e-4 and 7.6e-4 with 2,400 users; another seed moves them by 0.075-0.094. The training split
has 1,701 rows, so the last minibatch has one row and leaves rank 1 without any: that path is
exercised too. With one process the DDP path must be bit-identical.
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
    "n_estimators": 1,  # one network: the small-data default is a cross-fitted ensemble
    "max_epochs": 8,
    "batch_size": 100,  # even: the two shards of a step are the single-process minibatch
    "patience": 100,
    "device": "cpu",
    "verbose": False,
    "random_state": 0,
}
MEAN_ABS_TOLERANCE = 1e-4
CORRELATION_FLOOR = 0.99999


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


@pytest.mark.parametrize("rank", [0, 1])
def test_each_rank_takes_strided_rows_and_its_weight_share(rank: int) -> None:
    from uplift.distributed import DistributedContext
    from uplift.trainer import TrainConfig

    context = DistributedContext(rank=rank, world_size=2, local_rank=rank, backend="gloo")
    trainer = DistributedTrainer(TrainConfig(max_epochs=1, batch_size=4, patience=1), context)
    trainer._weight = np.array([1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 2.0], np.float32)
    order = np.array([6, 5, 4, 3, 2, 1, 0])
    steps = [(rows.tolist(), trainer._share) for rows in trainer._batches(order)]
    # step 1 is rows [6, 5, 4, 3] (weight 7), step 2 is [2, 1, 0] (weight 3)
    expected = {
        0: [([6, 4], 2 * 3 / 7), ([2, 0], 2 * 2 / 3)],
        1: [([5, 3], 2 * 4 / 7), ([1], 2 * 1 / 3)],
    }[rank]
    assert [rows for rows, _ in steps] == [rows for rows, _ in expected]
    np.testing.assert_allclose([s for _, s in steps], [s for _, s in expected])
    # the shares average to 1 over the ranks: the step's gradient is the single-process one
    last = DistributedTrainer(TrainConfig(max_epochs=1, batch_size=4, patience=1), context)
    last._weight = np.ones(5, np.float32)
    tail = [(rows.tolist(), last._share) for rows in last._batches(np.arange(5))][-1]
    assert tail == (([4], 2.0) if rank == 0 else ([4], 0.0))  # rank 1 has no row left


@pytest.mark.slow
def test_torchrun_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    frame, tau = simulate(2430)
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
    assert (run["world_size"], run["backend"], run["n_rows"]) == (2, "gloo", 2430)
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
