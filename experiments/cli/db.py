"""``liftlab db``: schema migrations."""

from __future__ import annotations

import click

from experiments.cli.context import domain_errors, settings


@click.group()
def db() -> None:
    """Create and migrate the database schema (Alembic)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: the latest)."""
    from experiments.db import migrate

    url = settings().database_url
    with domain_errors():
        migrate.upgrade(url, revision)
    click.echo(f"database at {revision}: {_redacted(url)}")


@db.command()
@click.option("--revision", default="-1", show_default=True, help="Target revision ('base': all).")
@click.confirmation_option(prompt="Downgrading can drop tables and their data. Continue?")
def downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION (default: one step back)."""
    from experiments.db import migrate

    with domain_errors():
        migrate.downgrade(settings().database_url, revision)
    click.echo(f"downgraded to {revision}")


@db.command()
def current() -> None:
    """Show the schema revision of the database and the latest one available."""
    from experiments.db import make_engine, migrate

    engine = make_engine(settings().database_url)
    try:
        click.echo(f"current: {migrate.current_revision(engine)}  head: {migrate.head_revision()}")
    finally:
        engine.dispose()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
