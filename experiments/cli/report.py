"""``liftlab report KEY``: build an experiment's causal report and write it as HTML, JSON or CSV.

Torch, DoWhy and EconML are imported only when the command runs (through the reporting service).
"""

from __future__ import annotations

from pathlib import Path

import click

from experiments.cli.context import settings, transaction


@click.command("report")
@click.argument("key")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["html", "json", "csv"]),
    default="html",
    show_default=True,
    help="html: one self-contained page; json: every number; csv: a zip with one CSV per table.",
)
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="File to write (default: report-KEY.html|json|zip in the current folder).",
)
@click.option(
    "--population",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Parquet of user features keyed by unit_id (default: the instance's artifacts).",
)
@click.option(
    "--k-min",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Suppress segments with fewer users than this.",
)
@click.option(
    "--epsilon",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Add Laplace noise (differential privacy) to segment counts and sums.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-refute", is_flag=True, help="Skip the DoWhy refutations.")
@click.option("--no-cross-check", is_flag=True, help="Skip the EconML cross-check.")
def report(
    key: str,
    output_format: str,
    output: Path | None,
    population: Path | None,
    k_min: int,
    epsilon: float | None,
    seed: int,
    no_refute: bool,
    no_cross_check: bool,
) -> None:
    """Write the causal report of experiment KEY (effects, heterogeneity, refutations, SQL)."""
    import os
    import time

    # Idle OpenMP threads (LightGBM inside the EconML cross-check, torch) spin by default; on a
    # shared machine the spinning threads take the cores the work needs: a LightGBM fit with
    # 2 threads at load 10 on 2 cores took 48.9 s spinning, 8.6 s passive. Read once, when the
    # first OpenMP library loads (none is loaded before this command's imports); a value the
    # user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from experiments.services import reporting

    config = settings()
    started = time.perf_counter()
    with transaction() as session:
        built = reporting.generate(
            session,
            key,
            artifact_dir=config.artifact_dir,
            population=population,
            k_min=k_min,
            dp_epsilon=epsilon,
            seed=seed,
            refute=not no_refute,
            cross_check=not no_cross_check,
        )
    built_at = time.perf_counter()
    body, _, name = reporting.render(built, output_format)
    target = output or Path(name)
    target.write_bytes(body)
    flags = built["flags"]
    click.echo(
        f"wrote {target} ({len(body):,} bytes; built in {built_at - started:.1f} s, rendered and "
        f"written in {time.perf_counter() - built_at:.2f} s); flags: {'; '.join(flags) or 'none'}"
    )


@click.command("report-worker")
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="How often to look for queued reports.",
)
@click.option("--once", is_flag=True, help="Build what is queued now, then exit.")
def report_worker(poll_seconds: float, once: bool) -> None:
    """Build the causal reports queued from the admin and the API (until SIGTERM or Ctrl-C)."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `liftlab report` (above)
    from experiments.jobs.report_worker import serve_reports

    built = serve_reports(poll_seconds, once)
    click.echo(f"report worker stopped; {built} report job(s) handled")
