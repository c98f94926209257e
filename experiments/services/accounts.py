"""Accounts: creation, authentication (argon2id), roles, deactivation; API keys with scopes."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from experiments.db import API_SCOPES, ROLES, Account, ApiKey, utcnow
from experiments.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from experiments.services import audit

_hasher = PasswordHasher()
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 12
API_KEY_PREFIX = "ll_"
# argon2 of a random string: verifying against it on unknown e-mails keeps timing uniform
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def normalize_email(email: str) -> str:
    value = (email or "").strip().lower()
    if not _EMAIL.match(value):
        raise ValidationError("email", f"{email!r} is not an e-mail address; use name@example.com")
    return value


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError("role", f"{role!r} is not a role; choose one of {', '.join(ROLES)}")
    return role


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def create_account(
    session: Session, *, email: str, password: str, role: str, actor: str = "system"
) -> Account:
    email = normalize_email(email)
    _check_role(role)
    _check_password(password)
    if session.scalar(select(Account.id).where(Account.email == email)) is not None:
        raise ConflictError("email", f"an account for {email} already exists; pick another e-mail")
    account = Account(email=email, password_hash=_hasher.hash(password), role=role, active=True)
    session.add(account)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="account.create",
        entity_type="account",
        entity_id=account.id,
        after={"email": email, "role": role},
    )
    return account


def authenticate(session: Session, email: str, password: str) -> Account | None:
    """The active account with these credentials, or None. Rehashes outdated argon2 parameters."""
    try:
        email = normalize_email(email)
    except ValidationError:
        return None
    account = session.scalar(select(Account).where(Account.email == email))
    if account is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password or "")
        return None
    try:
        _hasher.verify(account.password_hash, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if not account.active:
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    account.last_login_at = utcnow()
    return account


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account", account_id)
    return account


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.email)))


def count_admins(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).where(Account.role == "admin", Account.active.is_(True))
        )
        or 0
    )


def update_account(
    session: Session,
    account_id: int,
    *,
    role: str | None = None,
    active: bool | None = None,
    actor: str = "system",
) -> Account:
    account = get_account(session, account_id)
    before = {"role": account.role, "active": account.active}
    if role is not None:
        account.role = _check_role(role)
    if active is not None:
        account.active = bool(active)
    session.flush()
    if count_admins(session) == 0:
        raise ConflictError(
            "role", "this change would leave no active admin; promote another first"
        )
    audit.record(
        session,
        actor=actor,
        action="account.update",
        entity_type="account",
        entity_id=account.id,
        before=before,
        after={"role": account.role, "active": account.active},
    )
    return account


def set_password(session: Session, account_id: int, password: str, *, actor: str) -> None:
    account = get_account(session, account_id)
    account.password_hash = _hasher.hash(_check_password(password))
    audit.record(
        session,
        actor=actor,
        action="account.password",
        entity_type="account",
        entity_id=account.id,
    )


# --- API keys ----------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    # API keys are 256-bit random secrets, so a fast hash suffices (no dictionary to attack)
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, *, name: str, scopes: Iterable[str], actor: str, account_id: int | None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret; the secret is shown once and never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the key a name that says who uses it")
    scope_list = sorted(set(scopes))
    if not scope_list:
        raise ValidationError("scopes", f"choose at least one of {', '.join(API_SCOPES)}")
    unknown = [s for s in scope_list if s not in API_SCOPES]
    if unknown:
        raise ValidationError(
            "scopes", f"unknown scope {unknown[0]!r}; choose from {', '.join(API_SCOPES)}"
        )
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=_digest(secret),
        scopes=scope_list,
        created_by_id=account_id,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        account_id=account_id,
        action="api_key.create",
        entity_type="api_key",
        entity_id=key.id,
        after={"name": name, "scopes": scope_list, "prefix": prefix},
    )
    return key, secret


def verify_api_key(session: Session, secret: str, scope: str) -> ApiKey:
    """The live key for ``secret`` that carries ``scope``; raises PermissionDeniedError otherwise."""
    parts = (secret or "").split("_")
    if len(parts) < 3 or not secret.startswith(API_KEY_PREFIX):
        raise PermissionDeniedError(
            "missing or malformed API key; send 'Authorization: Bearer ll_…'"
        )
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.key_hash, _digest(secret)):
        raise PermissionDeniedError("unknown API key")
    if key.revoked_at is not None:
        raise PermissionDeniedError("this API key was revoked; create a new one in the admin")
    if scope not in key.scopes and "admin" not in key.scopes:
        raise PermissionDeniedError(f"this API key lacks the {scope!r} scope")
    now = utcnow()
    # a write per request would cost a commit on the hot path: refresh the stamp once a minute
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        key.last_used_at = now
    return key


def revoke_api_key(session: Session, key_id: int, *, actor: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError("api key", key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="api_key.revoke",
            entity_type="api_key",
            entity_id=key.id,
            before={"revoked": False},
            after={"revoked": True},
        )
    return key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id.desc())))
