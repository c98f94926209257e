"""What every command shares: settings, a transaction, errors shown as one clear line, output formats."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from experiments.settings import Settings

FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output as an aligned table or as JSON.",
)


def settings() -> Settings:
    from experiments.errors import ConfigurationError
    from experiments.settings import load_settings

    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """Turn liftlab's typed errors into a one-line CLI error (exit status 1, no traceback)."""
    from experiments.errors import LiftlabError

    try:
        yield
    except LiftlabError as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.contextmanager
def transaction(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends normally, rolled back on any error."""
    from experiments.db import make_engine, make_session_factory

    engine = make_engine(url or settings().database_url)
    try:
        with domain_errors(), make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def emit(rows: Sequence[dict[str, Any]], output_format: str, columns: Sequence[str]) -> None:
    if output_format == "json":
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)
