"""Uplift network architectures and their registry (uplift layer, torch)."""

from uplift.nets import dragonnet, snet, tarnet  # noqa: F401  (importing registers them)
from uplift.nets.registry import available, get_architecture, register

__all__ = ["available", "get_architecture", "register"]
