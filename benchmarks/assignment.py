"""Benchmark of assignment (issue 3), one function per section.

Section 1, batch assignment: ``bucket_hash_many`` + ``choose_variation_many`` (vectorized numpy
over UTF-16 code units) against a Python loop over the ``growthbook`` SDK's own functions
(``gbhash`` + ``chooseVariation``) on the same unit ids, with identical results asserted in the
run. The SDK loop runs on a prefix of the ids and its per-id rate is extrapolated (the table says
so). Sections 2 and 3 (``/api/v1/assign`` under gunicorn, events into PostgreSQL: bulk import
against the REST API's batches) live in ``benchmarks/assignment_serving.py``.

Run: ``.venv/bin/python benchmarks/assignment.py`` (``--quick`` for a few-second smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # `benchmarks.support` when run as a script

from benchmarks.assignment_serving import section_api, section_ingest
from experiments.assignment import (
    bucket_hash,
    bucket_hash_many,
    bucket_ranges,
    choose_variation,
    choose_variation_many,
)

SEED = "checkout-incentives-2026"
WEIGHTS = [0.25, 0.25, 0.25, 0.25]
COVERAGE = 0.8


@dataclass(frozen=True)
class Row:
    method: str
    ids: str
    timed_ids: int
    seconds: float
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.timed_ids / self.seconds


def uuid_ids(n: int, rng: np.random.Generator, non_ascii_share: float = 0.0) -> np.ndarray:
    """``n`` random uuid4-formatted ids, built without a per-id Python loop.

    With ``non_ascii_share``, that share of ids gets an accented character and an emoji.
    """
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).astype(np.uint32)
    nibbles = rng.integers(0, 16, size=(n, 32), dtype=np.uint8)
    chars = hex_digits[nibbles]
    out = np.full((n, 36), ord("-"), dtype=np.uint32)
    out[:, [i for i in range(36) if i not in (8, 13, 18, 23)]] = chars
    ids = out.view("<U36").reshape(n)
    if non_ascii_share > 0:
        pick = rng.random(n) < non_ascii_share
        ids = ids.astype("<U38")
        ids[pick] = np.char.add(np.char.add("é", ids[pick]), "😀")
    return ids


def best_of(repeats: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """Shortest wall time of ``repeats`` calls, and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def section_batch_assignment(n_ids: int, n_loop: int, repeats: int, seed: int = 3) -> list[Row]:
    """Users/s of batch assignment vs Python loops, identical results asserted."""
    import growthbook.core as gb_core  # the peer; a dev dependency

    rng = np.random.default_rng(seed)
    ids = uuid_ids(n_ids, rng)
    mixed = uuid_ids(n_ids, rng, non_ascii_share=0.01)
    ranges = bucket_ranges(len(WEIGHTS), COVERAGE, WEIGHTS)
    sdk_ranges = gb_core.getBucketRanges(len(WEIGHTS), COVERAGE, WEIGHTS)
    assert ranges == sdk_ranges

    def batch(values: np.ndarray, version: int) -> np.ndarray:
        buckets = bucket_hash_many(SEED, values, version)
        assert buckets is not None
        return choose_variation_many(buckets, ranges)

    batch(ids[:100], 2)  # warm-up: builds the hash tables once per process, outside the timing
    rows: list[Row] = []
    results: dict[tuple[str, int], np.ndarray] = {}
    for label, values in (("uuid", ids), ("uuid, 1% non-ASCII", mixed)):
        for version in (2, 1):
            if label != "uuid" and version == 1:
                continue
            seconds, chosen = best_of(repeats, lambda v=values, ver=version: batch(v, ver))
            results[(label, version)] = chosen
            rows.append(Row(f"liftlab batch (numpy), hash v{version}", label, n_ids, seconds))

    prefix = ids[:n_loop].tolist()
    for version in (2, 1):

        def sdk_loop(ver: int = version) -> list[int]:
            return [
                gb_core.chooseVariation(gb_core.gbhash(SEED, u, ver), sdk_ranges) for u in prefix
            ]

        seconds, sdk_chosen = best_of(1, sdk_loop)
        assert results[("uuid", version)][:n_loop].tolist() == sdk_chosen, "results differ from SDK"
        note = f"timed on the first {n_loop:,} ids, rate extrapolated"
        rows.append(Row(f"growthbook SDK loop, hash v{version}", "uuid", n_loop, seconds, note))

    mixed_prefix = mixed[:n_loop].tolist()
    sdk_mixed = [
        gb_core.chooseVariation(gb_core.gbhash(SEED, u, 2), sdk_ranges) for u in mixed_prefix
    ]
    assert results[("uuid, 1% non-ASCII", 2)][:n_loop].tolist() == sdk_mixed

    def scalar_loop() -> list[int]:
        return [choose_variation(bucket_hash(SEED, u, 2), ranges) for u in prefix]  # type: ignore[arg-type]

    seconds, scalar_chosen = best_of(1, scalar_loop)
    assert scalar_chosen == results[("uuid", 2)][:n_loop].tolist()
    note = f"timed on the first {n_loop:,} ids, rate extrapolated"
    rows.append(Row("liftlab scalar loop, hash v2", "uuid", n_loop, seconds, note))
    return rows


def format_batch_assignment(rows: list[Row], n_ids: int) -> str:
    sdk = {r.method[-2:]: r.per_second for r in rows if r.method.startswith("growthbook")}
    lines = [
        f"### Batch assignment: {n_ids:,} unit ids, 4 variations, coverage {COVERAGE}",
        "",
        "| method | ids | timed ids | seconds | users/s | x growthbook SDK loop (same hash version) | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = r.per_second / sdk[r.method[-2:]]
        lines.append(
            f"| {r.method} | {r.ids} | {r.timed_ids:,} | {r.seconds:.3f} | {r.per_second:,.0f} "
            f"| {ratio:.1f}x | {r.note} |"
        )
    lines += [
        "",
        "Identical variation indexes asserted in the run: batch vs SDK loop vs liftlab scalar loop "
        f"on the first {rows[-1].timed_ids:,} ids (both hash versions, and the non-ASCII ids).",
    ]
    return "\n".join(lines)


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--ids", type=int, default=1_000_000, help="unit ids for the batch forms")
    parser.add_argument("--loop-ids", type=int, default=50_000, help="ids for the Python loops")
    parser.add_argument("--output", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    n_ids, n_loop, repeats = (50_000, 5_000, 1) if args.quick else (args.ids, args.loop_ids, 3)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    sections = [format_batch_assignment(section_batch_assignment(n_ids, n_loop, repeats), n_ids)]
    n_requests, n_events = (400, 20_000) if args.quick else (4_000, 1_000_000)
    sections.append(section_api(n_requests))
    sections.append(section_ingest(n_events))
    load = (
        f"load average (1 min) {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    report = "\n\n".join(sections) + f"\n\nMachine {load}."
    print(report)
    print(f"\n({machine()}; total {time.perf_counter() - started:.1f} s)")
    if args.output is not None:
        command = "  ".join([".venv/bin/python", *(["benchmarks/assignment.py"] + sys.argv[1:])])
        args.output.write_text(
            "# Assignment benchmark\n\n"
            f"Command: `{command.replace('  ', ' ')}`\n\nMachine: {machine()}\n\n{report}\n"
        )


if __name__ == "__main__":
    main()
