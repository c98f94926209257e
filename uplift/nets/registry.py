"""Registry of uplift network architectures by name (uplift layer).

``register("name")`` decorates a class; registering a name twice, or asking for a name never
registered, raises ``KeyError`` naming the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

T = TypeVar("T", bound=type[nn.Module])
_ARCHITECTURES: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[T], T]:
    def decorate(cls: T) -> T:
        if name in _ARCHITECTURES:
            raise KeyError(
                f"architecture {name!r} is already registered "
                f"(by {_ARCHITECTURES[name].__qualname__}); pick another name"
            )
        _ARCHITECTURES[name] = cls
        return cls

    return decorate


def get_architecture(name: str) -> type[nn.Module]:
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; choose one of {available()}") from None


def available() -> list[str]:
    return sorted(_ARCHITECTURES)
