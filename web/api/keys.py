"""API-key authentication: ``Authorization: Bearer ll_…`` carrying the scope an endpoint needs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from experiments.errors import PermissionDeniedError
from experiments.services import accounts
from web.db import get_session

F = TypeVar("F", bound=Callable[..., Any])


def require_scope(scope: str) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            if not token:
                raise PermissionDeniedError(
                    "missing API key; send 'Authorization: Bearer <key>' (create keys under "
                    "Admin → API keys)"
                )
            key = accounts.verify_api_key(get_session(), token, scope)
            g.api_key_name = key.name
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
