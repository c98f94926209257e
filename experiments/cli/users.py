"""``liftlab users``: accounts and roles."""

from __future__ import annotations

import click

from experiments.cli.context import FORMAT_OPTION, emit, transaction

ROLE_CHOICE = click.Choice(["admin", "analyst", "viewer"])


@click.group()
def users() -> None:
    """Manage admin accounts and their roles."""


@users.command()
@click.option("--email", required=True, help="Login e-mail.")
@click.option("--role", type=ROLE_CHOICE, required=True, help="admin, analyst or viewer.")
@click.option(
    "--password",
    envvar="LIFTLAB_NEW_PASSWORD",
    help="Initial password (12+ characters). Omit it to have one generated and printed once.",
)
def create(email: str, role: str, password: str | None) -> None:
    """Create an account."""
    from experiments.services import accounts

    generated = password is None
    password = password or accounts.generate_password()
    with transaction() as session:
        account = accounts.create_account(
            session, email=email, password=password, role=role, actor="cli"
        )
        email = account.email
    click.echo(f"created {email} ({role})")
    if generated:
        click.echo(f"password (shown once): {password}")


@users.command("list")
@FORMAT_OPTION
def list_users(output_format: str) -> None:
    """List accounts."""
    from experiments.services import accounts

    with transaction() as session:
        rows = [
            {
                "id": a.id,
                "email": a.email,
                "role": a.role,
                "active": a.active,
                "last_login_at": a.last_login_at,
            }
            for a in accounts.list_accounts(session)
        ]
    emit(rows, output_format, ["id", "email", "role", "active", "last_login_at"])


@users.command("set-role")
@click.option("--email", required=True)
@click.option("--role", type=ROLE_CHOICE, required=True)
def set_role(email: str, role: str) -> None:
    """Change an account's role."""
    with transaction() as session:
        accounts, account = _find(session, email)
        accounts.update_account(session, account.id, role=role, actor="cli")
    click.echo(f"{email} is now {role}")


@users.command()
@click.option("--email", required=True)
def deactivate(email: str) -> None:
    """Disable an account (its history stays)."""
    with transaction() as session:
        accounts, account = _find(session, email)
        accounts.update_account(session, account.id, active=False, actor="cli")
    click.echo(f"{email} deactivated")


def _find(session, email):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from experiments.db import Account
    from experiments.errors import NotFoundError
    from experiments.services import accounts

    account = session.scalar(
        select(Account).where(Account.email == accounts.normalize_email(email))
    )
    if account is None:
        raise NotFoundError("account", email)
    return accounts, account
