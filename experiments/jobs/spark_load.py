"""Loading a Spark batch run's decision log into the ``decisions`` table as the strategy's next
batch run, so that it becomes the strategy's current ledger.

Layer: ``experiments.jobs`` (entry point behind ``liftlab strategy run --engine spark --load``
and ``liftlab strategy load KEY --decisions DIR``; pyarrow only, no Spark). The rows logged are
those ``strategy_run.run_strategy`` logs for the same population, column for column: one per
user in row order, ``batch_run`` the run's number, ``context`` ``{"source": "batch",
"model_run_id": ...}``, one ``decided_at``; the arm, bucket, propensity, expected value and
cost are the Spark run's, which are the single-process run's user for user.

Nothing is written unless everything checks (``spark_output``, ``spark_load_check``):

1. the manifest: the folder belongs to this strategy (key and id), and the strategy is
   configured now as the plan was solved (same model run, approved incentives, arms, incentive
   ids, cost models, calibration, budget, shares, objective): loading decisions planned for
   another configuration would serve a plan that a run today would not make;
2. the files (pass 1, before the lock): the part files are those listed, with their sizes and
   sha256; their columns and types; every row (``check_batch``); the totals against the
   manifest's plan (rows, users per bucket and arm, the exact spend); unit ids unique;
3. under ``lock_ledger`` (new decisions of the strategy wait), in a savepoint of the caller's
   transaction: the strategy is checked again as stored now, takes the next batch run number,
   and the files are read again (digests, rows and totals checked again) and logged in chunks
   of ``CHUNK`` rows (``experiments.services.decision_copy``: COPY on PostgreSQL); the plan is
   recorded as a Spark run records it, with ``config["loaded"]`` (the output's id and the batch
   run). Any failure rolls the savepoint back: no decision, the same batch run number.

The driver never holds more than ``CHUNK`` decisions as Python objects; what it keeps across the
folder is one 64-bit hash per unit (8 bytes a user) for the uniqueness check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.db import utcnow
from experiments.errors import ConflictError, ValidationError
from experiments.jobs import spark_load_check as chk
from experiments.jobs.spark_output import (
    COLUMNS,
    data_files,
    file_digest,
    open_folder,
    planned_inputs,
    read_manifest,
    spark_plan_config,
)
from experiments.jobs.strategy_run import model_run, plan_inputs
from experiments.services import audit
from experiments.services.decision_copy import RunRows, UserRows, insert_decisions
from experiments.services.strategies import get_strategy
from experiments.services.strategy_ledger import lock_ledger, start_run

if TYPE_CHECKING:
    from pyarrow import fs as pafs
    from sqlalchemy.orm import Session

    from experiments.db import Strategy

CHUNK = 50_000  # rows per record batch read and per insert
RESTORE = {  # how to put a changed setting back (else: run the Spark job again)
    "budget": "--budget",
    "holdout": "--holdout",
    "explore": "--explore",
    "objective": "--objective",
}


@dataclass(frozen=True)
class Loaded:
    """What a load logged."""

    batch_run: int
    users: int
    spend: float
    output_id: str
    plan: dict[str, Any]


def check_owner(
    session: Session, strategy: Strategy, manifest: dict[str, Any], path: str, option: str
) -> None:
    """The folder was written for ``strategy`` as it is configured now (module doc, step 1)."""
    key, claimed = strategy.key, manifest["strategy"]
    rerun = f"run `liftlab strategy run {key} --engine spark --output DIR --load` again"
    if claimed.get("key") != key:
        raise ValidationError(
            option,
            f"{path} holds the decisions of strategy {claimed.get('key')!r}, not {key!r}; load "
            f"it into that strategy (`liftlab strategy load {claimed.get('key')} --decisions "
            f"{path}`) or {rerun}",
        )
    if claimed.get("id") != strategy.id:
        raise ValidationError(
            option,
            f"{path} was written for a strategy {key!r} with id {claimed.get('id')}, this "
            f"database's has id {strategy.id} (created again, or another database); {rerun}",
        )
    run = model_run(session, strategy)
    if run.id != manifest["model_run_id"]:
        raise ValidationError(
            option,
            f"the decisions in {path} were planned with model run {manifest['model_run_id']}, "
            f"strategy {key!r} now uses model run {run.id}; {rerun}",
        )
    if manifest.get("approved_incentives") != list(strategy.approved_incentives):
        raise ValidationError(
            option,
            f"the decisions in {path} were planned when {key!r} approved "
            f"{manifest.get('approved_incentives')}, it now approves "
            f"{list(strategy.approved_incentives)}; {rerun}",
        )
    then = manifest["inputs"]
    now = planned_inputs(
        plan_inputs(
            session, strategy, run, then["arms"], then["features"], margin_rate=then["margin_rate"]
        )
    )
    for name, value in now.items():
        if then.get(name) != value:
            fix = rerun
            if name in RESTORE:
                fix += f", or set it back (`liftlab strategy set {key} {RESTORE[name]} ...`)"
            raise ValidationError(
                option,
                f"the decisions in {path} were planned with {name} {then.get(name)!r}, strategy "
                f"{key!r} now has {value!r}; {fix}",
            )


def _verify(filesystem: pafs.FileSystem, folder: str, entry: dict[str, Any], expect: chk.Expect):  # type: ignore[no-untyped-def]
    size, digest = file_digest(filesystem, f"{folder}/{entry['name']}")
    if (size, digest) != (entry.get("bytes"), entry.get("sha256")):
        raise expect.fail(
            entry["name"],
            f"has {size} bytes and sha256 {digest[:16]}..., the manifest lists "
            f"{entry.get('bytes')} bytes and {str(entry.get('sha256'))[:16]}... (changed or corrupt)",
        )


def checked_batches(
    filesystem: pafs.FileSystem, folder: str, manifest: dict[str, Any], expect: chk.Expect
) -> Iterator[chk.Checked]:
    """Every row of the folder in row order, checked, in batches of at most ``CHUNK`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    listed = [f["name"] for f in manifest["files"]]
    present = data_files(filesystem, folder)
    for name in listed:
        if name not in present:
            raise expect.fail(name, "is missing (the manifest lists it)")
    for name in present:
        if name not in listed:
            raise expect.fail(name, "is not one of the run's files (the manifest does not list it)")
    next_row = 0
    for entry in sorted(manifest["files"], key=lambda f: f["name"]):
        name = entry["name"]
        _verify(filesystem, folder, entry, expect)
        try:
            with filesystem.open_input_file(f"{folder}/{name}") as handle:
                parquet = pq.ParquetFile(handle)
                chk.check_schema(parquet.schema_arrow, name, expect)
                for batch in parquet.iter_batches(batch_size=CHUNK, columns=list(COLUMNS)):
                    checked = chk.check_batch(batch, name, next_row, expect)
                    next_row += len(checked)
                    yield checked
        except (pa.ArrowException, OSError) as exc:
            raise expect.fail(name, f"cannot be read as Parquet ({exc})") from exc


def check_files(
    filesystem: pafs.FileSystem, folder: str, manifest: dict[str, Any], expect: chk.Expect
) -> None:
    """Pass 1 (module doc, step 2): every file and row, the plan's totals, unique unit ids."""
    tally = chk.Tally(len(expect.arms))
    for checked in checked_batches(filesystem, folder, manifest, expect):
        tally.add(checked)
    tally.check_plan(manifest, expect)
    repeated = tally.repeated_hashes()
    if repeated.size:  # confirm on the ids themselves (a 64-bit hash may collide)
        pairs = []
        for checked in checked_batches(filesystem, folder, manifest, expect):
            hits = np.flatnonzero(np.isin(chk.unit_hashes(checked.unit_id), repeated))
            pairs += [(checked.unit_id[i], checked.first_row + int(i)) for i in hits]
        duplicate = chk.first_duplicate(pairs)
        if duplicate is not None:
            unit, first, second = duplicate
            raise ValidationError(
                expect.option,
                f"{expect.path}: unit_id {unit!r} is decided twice (rows {first} and {second}); "
                "give each unit once in the population and run `liftlab strategy run "
                f"{expect.key} --engine spark --output DIR` again",
            )


def expect_from(manifest: dict[str, Any], key: str, path: str, option: str) -> chk.Expect:
    inputs = manifest["inputs"]
    return chk.Expect(
        key=key,
        model_run_id=int(manifest["model_run_id"]),
        arms=list(inputs["arms"]),
        incentive_ids=[int(i) for i in inputs["incentive_ids"]],
        path=path,
        option=option,
    )


def load_decisions(
    session: Session, key: str, path: str, *, actor: str = "job", option: str = "--decisions"
) -> Loaded:
    """Log the Spark decisions in folder ``path`` as strategy ``key``'s next batch run (module
    doc). Bad input raises ``ValidationError`` naming ``option``, and nothing is written."""
    filesystem, folder = open_folder(path, option)
    manifest = read_manifest(filesystem, folder, path, option)
    strategy = get_strategy(session, key)
    check_owner(session, strategy, manifest, path, option)
    expect = expect_from(manifest, key, path, option)
    check_files(filesystem, folder, manifest, expect)

    lock = lock_ledger(session, strategy)
    session.refresh(strategy)  # as stored now: a change committed while we read is seen
    check_owner(session, strategy, manifest, path, option)
    loaded = (strategy.config or {}).get("loaded") or {}
    if (
        loaded.get("output_id") == manifest["output_id"]
        and loaded.get("batch_run") == lock.batch_run
    ):
        raise ConflictError(
            option,
            f"{path} is strategy {key!r}'s current ledger already (batch run "
            f"{lock.batch_run}); nothing to load",
        )
    batch_run = lock.batch_run + 1
    with session.begin_nested():
        start_run(session, strategy, lock, float(manifest["plan"]["spend"]))
        run = RunRows(
            strategy_id=strategy.id,
            batch_run=batch_run,
            decided_at=utcnow(),
            context={"source": "batch", "model_run_id": expect.model_run_id},
        )
        tally = chk.Tally(len(expect.arms), hash_units=False)
        for checked in checked_batches(filesystem, folder, manifest, expect):
            users = UserRows(
                unit_id=checked.unit_id,
                incentive_id=checked.incentive_id,
                bucket=checked.bucket,
                propensity=checked.propensity.tolist(),
                expected_value=checked.expected_value.tolist(),
                expected_cost=checked.expected_cost.tolist(),
            )
            insert_decisions(session, run, users)
            tally.add(checked)
        tally.check_plan(manifest, expect)  # the files did not change since pass 1
        _record(session, strategy, manifest, path, batch_run, actor)
    plan = manifest["plan"]
    return Loaded(batch_run, tally.rows, float(plan["spend"]), manifest["output_id"], plan)


def _record(
    session: Session,
    strategy: Strategy,
    manifest: dict[str, Any],
    path: str,
    batch_run: int,
    actor: str,
) -> None:
    """The loaded plan as the strategy's plan (what a Spark run records), and the audit entry."""
    config = spark_plan_config(
        strategy.config,
        manifest["plan"],
        model_run_id=int(manifest["model_run_id"]),
        margin_rate=float(manifest["inputs"]["margin_rate"]),
        output=path,
        online=manifest.get("online"),
        frontier=manifest.get("frontier"),
    )
    config["loaded"] = {"output_id": manifest["output_id"], "batch_run": batch_run}
    strategy.config = config
    audit.record(
        session,
        actor=actor,
        action="strategy.load",
        entity_type="strategy",
        entity_id=strategy.key,
        after={
            "batch_run": batch_run,
            "users": int(manifest["rows"]),
            "spend": manifest["plan"].get("spend"),
            "lambda": manifest["plan"].get("lambda"),
            "decisions_path": path,
            "output_id": manifest["output_id"],
        },
    )
    session.flush()
