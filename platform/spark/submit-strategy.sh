#!/usr/bin/env sh
# Batch decisions of a strategy on Apache Spark (see README.md beside this file).
# Run from the repository root on a machine that can reach the liftlab database, e.g.:
#   STRATEGY=checkout LIFTLAB_DATABASE_URL=postgresql+psycopg://... MASTER=yarn \
#   POPULATION=s3a://shop/population/ OUTPUT=s3a://shop/decisions/2026-12-01/ \
#   sh platform/spark/submit-strategy.sh
set -eu

STRATEGY="${STRATEGY:?set STRATEGY to the strategy key}"
MASTER="${MASTER:-local[*]}"                     # yarn, k8s://https://..., spark://host:7077
DEPLOY_MODE="${DEPLOY_MODE:-client}"              # the driver reads and writes the database
POPULATION="${POPULATION:-population.parquet}"    # Parquet file or folder: unit_id + features
OUTPUT="${OUTPUT:-decisions}"                     # Parquet folder, overwritten
MARGIN_RATE="${MARGIN_RATE:-0.4}"
EXECUTOR_CORES="${EXECUTOR_CORES:-4}"
EXECUTOR_MEMORY="${EXECUTOR_MEMORY:-8g}"
SHUFFLE_PARTITIONS="${SHUFFLE_PARTITIONS:-200}"   # about 2-4 per executor core

exec spark-submit \
    --master "$MASTER" \
    --deploy-mode "$DEPLOY_MODE" \
    --name "liftlab-strategy-$STRATEGY" \
    --conf spark.executor.cores="$EXECUTOR_CORES" \
    --conf spark.executor.memory="$EXECUTOR_MEMORY" \
    --conf spark.sql.shuffle.partitions="$SHUFFLE_PARTITIONS" \
    --conf spark.sql.execution.arrow.maxRecordsPerBatch=10000 \
    --conf spark.python.worker.reuse=true \
    --conf spark.executorEnv.OMP_NUM_THREADS=1 \
    experiments/jobs/spark_strategy.py \
    "$STRATEGY" \
    --population "$POPULATION" \
    --output "$OUTPUT" \
    --margin-rate "$MARGIN_RATE"
