"""``liftlab events``: bulk import of exposures, views, carts and orders."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.cli.context import domain_errors, settings


@click.group()
def events() -> None:
    """Load events into the database."""


@events.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    help="File format (default: from the file name).",
)
@click.option("--chunk-size", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="PostgreSQL connections loading each chunk at once (SQLite always uses one).",
)
def import_(path: Path, fmt: str | None, chunk_size: int, workers: int) -> None:
    """Import events from PATH (columns: event_id, unit_id, name, occurred_at, value, properties).

    The whole file is validated before anything is written; each chunk is then its own transaction
    and events already stored (same event_id) are skipped, so an interrupted import can simply be
    started again.
    """
    from experiments.db import make_engine
    from experiments.services.event_import import import_events

    engine = make_engine(settings().database_url)
    try:
        with domain_errors():
            result = import_events(
                engine,
                path,
                fmt=fmt,
                chunk_size=chunk_size,
                workers=workers,
                progress=lambda done, total: click.echo(f"  {done:,}/{total:,} rows", err=True),
            )
    finally:
        engine.dispose()
    click.echo(
        f"imported {result.rows:,} rows: {result.inserted:,} new, {result.duplicates:,} already "
        f"stored ({result.chunks} chunks)"
    )
