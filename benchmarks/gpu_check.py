"""GPU check: train UpliftModel on CUDA with bf16 autocast and report throughput.

    .venv/bin/python benchmarks/gpu_check.py [--users 1000000]

Exits with status 2 and a clear message when CUDA is absent (no GPU on this machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=1_000_000)
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_check: CUDA is not available on this machine (torch "
            f"{torch.__version__}); nothing to check. Run it where a GPU is present."
        )
        return 2
    import numpy as np

    from benchmarks.uplift_large import speed_data
    from uplift import UpliftModel

    X, arm, y = speed_data(args.users)
    print(
        f"device: {torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}"
    )
    start = time.perf_counter()
    model = UpliftModel(random_state=0, verbose=True, device="cuda").fit(X, arm, y, control=0)
    torch.cuda.synchronize()
    fit_s = time.perf_counter() - start
    steps = sum(model.best_epochs_)  # epochs to the selected checkpoint
    start = time.perf_counter()
    tau = model.effect(X)
    score_s = time.perf_counter() - start
    print(
        f"fit {args.users:,} users x {tau.shape[1] + 1} arms on CUDA (bf16 autocast): "
        f"{fit_s:.1f} s ({args.users / fit_s:,.0f} users/s overall; best epoch {steps}); "
        f"CPU scoring {args.users / score_s:,.0f} users/s; mean effects {np.round(tau.mean(0), 4)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
