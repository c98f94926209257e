"""Checks of a Spark decision log's files and rows before they are logged as a batch run.

Layer: ``experiments.jobs`` (pyarrow and numpy; no database). ``spark_load`` reads the part
files of a folder written by ``spark_strategy`` in bounded record batches and passes each through
``check_batch``, which refuses, naming the file, the row and the column:

- a column missing or of another type than ``spark_output.COLUMNS`` says;
- rows not numbered 0, 1, 2, ... across the files in name order (a missing, repeated or
  reordered part file shows up as a gap);
- nulls where a decision needs a value, a unit id of no or more than 200 characters;
- another strategy or model run than the manifest's;
- a bucket other than holdout / explore / exploit, an incentive outside the run's arms (the
  strategy's approved incentives the model scores), an incentive id that is not that arm's, an
  incentive in the holdout bucket;
- a propensity outside (0, 1], a value or cost that is not finite, value or cost on a row that
  gives no incentive.

``Tally`` adds up the checked rows (users per bucket and arm, the exact spend, a 64-bit hash of
each unit id) and compares them with the manifest's row count and plan; unit ids are unique when
their hashes are (equal hashes are confirmed on the ids themselves before a duplicate is
reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.errors import ValidationError
from experiments.jobs.spark_output import COLUMNS
from experiments.strategy.buckets import BUCKETS, HOLDOUT
from experiments.strategy.exact import exact_sum, to_float

if TYPE_CHECKING:
    import pyarrow as pa

MAX_UNIT_ID = 200  # decisions.unit_id is String(200)
RERUN = (
    "the folder is not what `liftlab strategy run KEY --engine spark --output DIR` wrote; "
    "run it again"
)


@dataclass(frozen=True)
class Expect:
    """What every row of the folder must satisfy, from its manifest."""

    key: str
    model_run_id: int
    arms: list[str]
    incentive_ids: list[int]
    path: str  # for messages
    option: str  # the CLI option that named the folder

    def fail(self, file: str, problem: str) -> ValidationError:
        return ValidationError(self.option, f"{self.path}/{file}: {problem}; {RERUN}")


@dataclass(frozen=True)
class Checked:
    """One checked record batch: its first row and its columns, ready to be logged."""

    first_row: int
    unit_id: list[str]
    incentive_id: list[int | None]
    bucket: list[str]
    propensity: np.ndarray
    expected_value: np.ndarray
    expected_cost: np.ndarray
    arm: np.ndarray  # index into Expect.arms, -1 = none
    bucket_code: np.ndarray

    def __len__(self) -> int:
        return len(self.unit_id)


def check_schema(schema: pa.Schema, file: str, expect: Expect) -> None:
    """Every column of ``COLUMNS`` with its type (``string`` may be ``large_string``)."""
    for name, want in COLUMNS.items():
        if name not in schema.names:
            raise expect.fail(file, f"column {name!r} is missing")
        got = str(schema.field(name).type)
        if got != want and not (want == "string" and got == "large_string"):
            raise expect.fail(file, f"column {name!r} is {got}, expected {want}")


def _first(bad: np.ndarray) -> int | None:
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def check_batch(batch: pa.RecordBatch, file: str, next_row: int, expect: Expect) -> Checked:
    """The batch's rows checked (module doc); ``next_row`` is the row number it must start at."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows

    def column(name: str) -> Any:
        values = batch.column(batch.schema.get_field_index(name))
        return values.cast(pa.string()) if values.type == pa.large_string() else values

    def refuse(bad: Any, name: str, problem: str) -> None:
        i = _first(np.asarray(bad, dtype=bool))
        if i is not None:
            value = column(name)[i].as_py()
            raise expect.fail(file, f"row {next_row + i}: {name} {value!r} {problem}")

    for name in COLUMNS:
        if name not in ("incentive", "incentive_id"):
            refuse(column(name).is_null().to_numpy(zero_copy_only=False), name, "is null")
    rows = column("row").to_numpy()
    refuse(rows != np.arange(next_row, next_row + n), "row", f"is out of sequence ({next_row}+)")
    length = pc.utf8_length(column("unit_id")).to_numpy()
    refuse((length < 1) | (length > MAX_UNIT_ID), "unit_id", f"must have 1 to {MAX_UNIT_ID} chars")
    other = pc.not_equal(column("strategy"), expect.key).to_numpy(zero_copy_only=False)
    refuse(other, "strategy", f"is not {expect.key!r}")
    model_run = column("model_run_id").to_numpy()
    refuse(model_run != expect.model_run_id, "model_run_id", f"is not {expect.model_run_id}")
    code = pc.index_in(column("bucket"), value_set=pa.array(BUCKETS))
    refuse(code.is_null().to_numpy(zero_copy_only=False), "bucket", f"is not one of {BUCKETS}")
    code = code.to_numpy().astype(np.int8)
    incentive = column("incentive")
    given = incentive.is_valid().to_numpy(zero_copy_only=False)
    arm_of = pc.index_in(incentive, value_set=pa.array(expect.arms, pa.string()))
    unknown = given & arm_of.is_null().to_numpy(zero_copy_only=False)
    refuse(unknown, "incentive", f"is not one of the run's arms {expect.arms}")
    arm = pc.fill_null(arm_of, -1).to_numpy().astype(np.int64)
    ids = np.asarray([*expect.incentive_ids, -1], dtype=np.int64)[arm]  # -1 (none) -> last
    got_id = column("incentive_id")
    id_given = got_id.is_valid().to_numpy(zero_copy_only=False)
    id_value = pc.fill_null(got_id, -1).to_numpy()
    refuse((id_given != given) | (id_value != ids), "incentive_id", "is not the incentive's id")
    refuse(given & (code == HOLDOUT), "incentive", "is given in the holdout bucket")
    propensity = column("propensity").to_numpy()
    ok = np.isfinite(propensity) & (propensity > 0) & (propensity <= 1)
    refuse(~ok, "propensity", "is not in (0, 1]")
    money = {}
    for name in ("expected_value", "expected_cost"):
        money[name] = column(name).to_numpy()
        refuse(~np.isfinite(money[name]), name, "is not a finite number")
        refuse(~given & (money[name] != 0), name, "is not 0 on a row without incentive")
    return Checked(
        first_row=next_row,
        unit_id=column("unit_id").to_pylist(),
        incentive_id=got_id.to_pylist(),
        bucket=column("bucket").to_pylist(),
        propensity=propensity,
        expected_value=money["expected_value"],
        expected_cost=money["expected_cost"],
        arm=arm,
        bucket_code=code,
    )


@dataclass
class Tally:
    """Totals of the checked rows, compared with the manifest by ``check_plan``."""

    k: int
    hash_units: bool = True
    rows: int = 0
    count_by_bucket: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))
    count_by_arm: np.ndarray = field(init=False)
    spend_units: int = 0
    hashes: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.count_by_arm = np.zeros(self.k, dtype=np.int64)

    def add(self, checked: Checked) -> None:
        self.rows += len(checked)
        self.count_by_bucket += np.bincount(checked.bucket_code, minlength=3)
        chosen = checked.arm >= 0
        self.count_by_arm += np.bincount(checked.arm[chosen], minlength=self.k)
        self.spend_units += exact_sum(checked.expected_cost)
        if self.hash_units:
            self.hashes.append(unit_hashes(checked.unit_id))

    def check_plan(self, manifest: dict[str, Any], expect: Expect) -> None:
        """Row count, users per bucket and arm and the exact spend are the manifest's plan's."""
        plan = manifest["plan"]
        found = {
            "rows": self.rows,
            "count_by_bucket": self.count_by_bucket.tolist(),
            "count_by_arm": self.count_by_arm.tolist(),
            "spend": to_float(self.spend_units),
        }
        claimed = {"rows": manifest["rows"], **{k: plan.get(k) for k in found if k != "rows"}}
        for name, value in found.items():
            if claimed[name] != value:
                raise expect.fail(
                    "*", f"the files hold {name} {value}, the manifest's plan {claimed[name]}"
                )

    def repeated_hashes(self) -> np.ndarray:
        """Unit-id hashes seen more than once (candidates for duplicate unit ids)."""
        if not self.hashes:
            return np.zeros(0, dtype=np.uint64)
        h = np.sort(np.concatenate(self.hashes))
        return np.unique(h[1:][h[1:] == h[:-1]])


def unit_hashes(unit_ids: list[str]) -> np.ndarray:
    """A 64-bit hash of each unit id (pandas' SipHash of the UTF-8 bytes)."""
    from pandas.util import hash_array

    return hash_array(np.asarray(unit_ids, dtype=object))


def first_duplicate(pairs: list[tuple[str, int]]) -> tuple[str, int, int] | None:
    """The first unit id given twice among (unit id, row) pairs, with both rows."""
    seen: dict[str, int] = {}
    for unit, row in sorted(pairs, key=lambda p: p[1]):
        if unit in seen:
            return unit, seen[unit], row
        seen[unit] = row
    return None
