"""The Spark batch run's decision log on disk: its Parquet columns, the manifest written beside
it, and the checks that tie a folder to the run and the plan that wrote it.

Layer: ``experiments.jobs`` (pyarrow only: no pyspark, no database). ``spark_strategy`` writes
the folder: Parquet part files sorted by ``row`` (the population's numbering, the order the
single-process run logs its users in) with the columns of ``COLUMNS``, then
``_liftlab_manifest.json`` (``MANIFEST``): the strategy (key and id), the model run, the inputs
the plan was solved with (arms, incentive ids, cost models, calibration, budget, shares,
objective, margin rate), the plan summary (lambda, spend, counts), the serving state online
decisions need (``online``: calibration shifts and mean costs, ``strategy_run.serving_state``),
the number of rows, and each part file's size and sha256. A manifest written before the serving
state was recorded has no ``online``: its plan is loaded, and online decisions use the fallback.
``spark_load`` refuses a folder whose files, rows or plan do not match it. Readers of the
Parquet (Spark, pandas, pyarrow datasets) skip the manifest: names starting with ``_`` or ``.``
are hidden files to them.

Paths are local, or URIs that ``pyarrow.fs`` opens (``s3://``, ``gs://``, ``hdfs://``;
Hadoop's ``s3a://`` and ``s3n://`` are opened as ``s3://``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from typing import TYPE_CHECKING, Any

from experiments.errors import ValidationError
from experiments.strategy.spend_curve import check_curve

if TYPE_CHECKING:
    from pyarrow import fs as pafs

    from experiments.jobs.strategy_run import StrategyInputs

MANIFEST = "_liftlab_manifest.json"
FORMAT = "liftlab.spark-decisions"
VERSION = 1
# column -> Arrow type name, as the Spark job writes them (nullable: incentive, incentive_id)
COLUMNS = {
    "row": "int64",
    "unit_id": "string",
    "incentive": "string",
    "incentive_id": "int64",
    "bucket": "string",
    "propensity": "double",
    "expected_value": "double",
    "expected_cost": "double",
    "strategy": "string",
    "model_run_id": "int64",
}
_READ_BLOCK = 1 << 20


def open_folder(path: str, option: str = "--output") -> tuple[pafs.FileSystem, str]:
    """The file system of ``path`` and the folder's path on it (``ValidationError`` naming
    ``option`` when pyarrow cannot open it)."""
    from pyarrow import fs as pafs

    if "://" not in path:
        return pafs.LocalFileSystem(), os.path.abspath(path)
    scheme, rest = path.split("://", 1)
    if scheme in ("s3a", "s3n"):
        path = f"s3://{rest}"
    try:
        return pafs.FileSystem.from_uri(path.rstrip("/"))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ValueError
        raise ValidationError(
            option,
            f"{path} cannot be opened by pyarrow ({exc}); give a local path or an URI "
            "such as s3://bucket/folder",
        ) from exc


def data_files(filesystem: pafs.FileSystem, folder: str) -> list[str]:
    """Names of the visible files of ``folder`` (not starting with ``_`` or ``.``), sorted."""
    from pyarrow import fs as pafs

    infos = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(
        i.base_name
        for i in infos
        if i.type == pafs.FileType.File and not i.base_name.startswith(("_", "."))
    )


def file_digest(filesystem: pafs.FileSystem, path: str) -> tuple[int, str]:
    """Size and sha256 of one file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with filesystem.open_input_stream(path) as stream:
        while block := stream.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, dataclasses dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value))


def planned_inputs(inputs: StrategyInputs) -> dict[str, Any]:
    """What the plan was solved with: ``StrategyInputs`` without the model's folder."""
    fields = plain(inputs)
    fields.pop("artifact_path")
    return fields


def build_manifest(
    inputs: StrategyInputs,
    *,
    strategy_id: int,
    approved: list[str],
    plan: dict[str, Any],
    rows: int,
    online: dict[str, Any] | None = None,
    frontier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a run's output, without its file list (``write_manifest`` adds it)."""
    extra = {} if online is None else {"online": plain(online)}
    if frontier is not None:
        extra["frontier"] = plain(frontier)
    return {
        "format": FORMAT,
        "version": VERSION,
        "output_id": uuid.uuid4().hex,
        "strategy": {"key": inputs.key, "id": strategy_id},
        "model_run_id": inputs.model_run_id,
        "approved_incentives": list(approved),
        "inputs": planned_inputs(inputs),
        "plan": plain(plan),
        "rows": rows,
        **extra,
    }


def write_manifest(output: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``manifest`` with the size and sha256 of each part file into ``output``."""
    filesystem, folder = open_folder(output)
    files = []
    for name in data_files(filesystem, folder):
        size, digest = file_digest(filesystem, f"{folder}/{name}")
        files.append({"name": name, "bytes": size, "sha256": digest})
    manifest = {**manifest, "files": files}
    with filesystem.open_output_stream(f"{folder}/{MANIFEST}") as stream:
        stream.write(json.dumps(manifest, indent=2).encode())
    return manifest


def read_manifest(
    filesystem: pafs.FileSystem, folder: str, path: str, option: str
) -> dict[str, Any]:
    """The folder's manifest, checked for its format; ``ValidationError`` naming ``option``."""
    from pyarrow import fs as pafs

    rerun = "write it with `liftlab strategy run KEY --engine spark --output DIR`"
    if filesystem.get_file_info(folder).type != pafs.FileType.Directory:
        raise ValidationError(option, f"{path} is not a folder; {rerun}")
    try:
        with filesystem.open_input_stream(f"{folder}/{MANIFEST}") as stream:
            manifest = json.loads(stream.read())
    except FileNotFoundError:
        raise ValidationError(
            option, f"{path} has no {MANIFEST}, so it cannot be checked against its run; {rerun}"
        ) from None
    except (ValueError, OSError) as exc:
        raise ValidationError(
            option, f"{path}/{MANIFEST} is not readable JSON ({exc}); {rerun}"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationError(option, f"{path}/{MANIFEST} is not a liftlab manifest; {rerun}")
    if manifest.get("version") != VERSION:
        raise ValidationError(
            option,
            f"{path}/{MANIFEST} has version {manifest.get('version')!r}, this liftlab reads "
            f"{VERSION}; {rerun}",
        )
    bad = next((name for name, ok in _SHAPE if not _holds(ok, manifest)), None)
    if bad is not None:
        raise ValidationError(option, f"{path}/{MANIFEST}: {bad} is missing or malformed; {rerun}")
    return manifest


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(_int(v) for v in value)


def _serving_state(m: dict[str, Any]) -> bool:
    """No ``online`` (an older manifest), or the serving state of this manifest's plan."""
    if "online" not in m:
        return True
    state, arms = m["online"], m["inputs"]["arms"]
    return (
        state["model_run_id"] == m["model_run_id"]
        and state["arms"] == arms
        and state["features"] == m["inputs"]["features"]
        and isinstance(state["objective"], str)
        and len(state["calibration_shifts"]) == len(state["mean_cost"]) == len(arms)
        and all(s is None or _number(s) for s in state["calibration_shifts"])
        and all(_number(c) for c in state["mean_cost"])
        and ("spend_curve" not in state or check_curve(state["spend_curve"]))
    )


def _frontier(m: dict[str, Any]) -> bool:
    """No ``frontier`` (an older manifest), or points of budget, value and spend from a sample
    of at most the run's users."""
    if "frontier" not in m:
        return True
    f = m["frontier"]
    return (
        _int(f["sample"]["users"])
        and _int(f["sample"]["of"])
        and 0 < f["sample"]["users"] <= f["sample"]["of"]
        and len(f["points"]) >= 2
        and all(_number(p[c]) for p in f["points"] for c in ("budget", "value", "spend"))
    )


def _holds(check: Any, manifest: dict[str, Any]) -> bool:
    try:
        return bool(check(manifest))
    except (KeyError, TypeError, AttributeError):
        return False


# what the loader reads from a manifest, checked before it is used
_SHAPE: tuple[tuple[str, Any], ...] = (
    ("output_id", lambda m: isinstance(m["output_id"], str)),
    ("strategy", lambda m: isinstance(m["strategy"]["key"], str) and _int(m["strategy"]["id"])),
    ("model_run_id", lambda m: _int(m["model_run_id"])),
    ("approved_incentives", lambda m: isinstance(m["approved_incentives"], list)),
    ("inputs.arms", lambda m: all(isinstance(a, str) for a in m["inputs"]["arms"])),
    (
        "inputs.incentive_ids",
        lambda m: (
            _ints(m["inputs"]["incentive_ids"])
            and len(m["inputs"]["incentive_ids"]) == len(m["inputs"]["arms"])
        ),
    ),
    ("inputs.features", lambda m: isinstance(m["inputs"]["features"], list)),
    ("inputs.margin_rate", lambda m: _number(m["inputs"]["margin_rate"])),
    ("rows", lambda m: _int(m["rows"]) and m["rows"] >= 0),
    ("plan.spend", lambda m: _number(m["plan"]["spend"])),
    ("plan.count_by_bucket", lambda m: _ints(m["plan"]["count_by_bucket"])),
    ("plan.count_by_arm", lambda m: _ints(m["plan"]["count_by_arm"])),
    ("online", _serving_state),
    ("frontier", _frontier),
    (
        "files",
        lambda m: all(
            isinstance(f["name"], str) and _int(f["bytes"]) and isinstance(f["sha256"], str)
            for f in m["files"]
        ),
    ),
)


def spark_plan_config(
    config: dict[str, Any],
    plan: dict[str, Any],
    *,
    model_run_id: int,
    margin_rate: float,
    output: str,
    online: dict[str, Any] | None = None,
    frontier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A strategy's ``config`` after a Spark plan: ``plan``, engine, decision log path, the
    plan's serving state (``online``) and its profit frontier (``frontier``, from
    ``spark_strategy.sampled_frontier``: its points, and as ``frontier_sample`` how many of how
    many users they were computed on). An earlier plan's serving state or frontier is never
    kept: they belong to that plan, so without them online decisions use the fallback and the
    admin shows no frontier."""
    dropped = ("frontier", "frontier_sample", "online")
    kept = {k: v for k, v in config.items() if k not in dropped}
    if online is not None:
        kept["online"] = plain(online)
    if frontier is not None:
        kept["frontier"] = plain(frontier["points"])
        kept["frontier_sample"] = plain(frontier["sample"])
    return {
        **kept,
        "plan": plan,
        "model_run_id": model_run_id,
        "margin_rate": margin_rate,
        "engine": "spark",
        "decisions_path": output,
    }
