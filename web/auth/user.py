"""The logged-in user as Flask-Login sees it, and the role decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from experiments.db import Account
from web.db import get_session
from web.extensions import login_manager

# a role may do everything the roles below it may do
ROLE_RANK = {"viewer": 0, "analyst": 1, "admin": 2}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CurrentUser:
    """A plain copy of the account (no ORM object outlives its request's session)."""

    id: int
    email: str
    role: str
    active: bool

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @classmethod
    def of(cls, account: Account) -> CurrentUser:
        return cls(id=account.id, email=account.email, role=account.role, active=account.active)


@login_manager.user_loader
def load_user(user_id: str) -> CurrentUser | None:
    if not user_id.isdigit():
        return None
    account = get_session().get(Account, int(user_id))
    if account is None or not account.active:
        return None
    return CurrentUser.of(account)


def role_required(role: str) -> Callable[[F], F]:
    """Require a logged-in user whose role is at least ``role``; otherwise redirect or 403."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.can(role):
                abort(403, description=f"This action needs the {role} role.")
            return view(*args, **kwargs)

        return login_required(wrapped)  # type: ignore[return-value]

    return decorate


def actor() -> str:
    """How the current user appears in the audit log."""
    return str(current_user.email) if current_user.is_authenticated else "anonymous"
