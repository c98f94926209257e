"""Typed domain errors (services layer and below).

Every error names the field at fault and how to fix it, so that the web layer and the CLI can show it
to a person as it is.
"""

from __future__ import annotations


class LiftlabError(Exception):
    """Base of every error liftlab raises on purpose."""


class ConfigurationError(LiftlabError):
    """A setting is missing or malformed; raised once, at start-up."""


class ValidationError(LiftlabError):
    """Bad input. ``field`` names the offending field; the message says how to fix it."""

    def __init__(
        self, field: str, message: str, errors: list[dict[str, object]] | None = None
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        # every problem found, for batch inputs: [{"index": i, "field": ..., "reason": ...}, ...]
        self.errors = errors or []


class NotFoundError(LiftlabError):
    """The thing asked for does not exist."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class ConflictError(LiftlabError):
    """The request contradicts what is stored (duplicate key, overlapping range, bad transition)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PermissionDeniedError(LiftlabError):
    """The caller's role or key scope does not allow the action."""


class TrainingFailedError(LiftlabError):
    """Training failed after its inputs were accepted.

    ``run_id`` is the failed model run recorded in its own transaction (None when none was), and
    ``error`` says what went wrong, as recorded on that run.
    """

    def __init__(self, run_id: int | None, error: str) -> None:
        where = f"model run {run_id}" if run_id is not None else "training (no run recorded)"
        super().__init__(f"{where} failed: {error}")
        self.run_id = run_id
        self.error = error
