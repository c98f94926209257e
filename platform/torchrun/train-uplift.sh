#!/usr/bin/env sh
# Distributed training of the uplift model with torchrun (see README.md beside this file).
# Run from the repository root, the same command on every node. Every value is an environment
# variable with a default for one machine:
#   NNODES=1 NPROC_PER_NODE=2 DATA=training.parquet OUTPUT=runs/uplift sh platform/torchrun/train-uplift.sh
# On several nodes set NNODES, and RDZV_ENDPOINT=<host of node 0>:29400 on all of them.
set -eu

NNODES="${NNODES:-1}"
NPROC_PER_NODE="${NPROC_PER_NODE:-2}"          # GPUs per node (nccl), or CPU processes (gloo)
RDZV_ENDPOINT="${RDZV_ENDPOINT:-127.0.0.1:29400}"
RUN_ID="${RUN_ID:-uplift}"
DATA="${DATA:-training.parquet}"
OUTPUT="${OUTPUT:-runs/uplift}"

exec torchrun \
    --nnodes="$NNODES" \
    --nproc-per-node="$NPROC_PER_NODE" \
    --rdzv-backend=c10d \
    --rdzv-endpoint="$RDZV_ENDPOINT" \
    --rdzv-id="$RUN_ID" \
    --max-restarts=0 \
    -m experiments.jobs.train_distributed \
    --data "$DATA" \
    --output "$OUTPUT" \
    --treatment arm \
    --control none \
    --outcomes conversion,revenue \
    --epochs 60 \
    --batch-size 1024 \
    --seed 0 \
    --device auto
