"""liftlab's causal ML library (bottom layer): numpy, pandas, torch, scikit-learn only.

Knows nothing of Flask, SQL or experiments. Heavy names are resolved lazily so that importing
``uplift`` for a helper does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UpliftModel"]


def __getattr__(name: str) -> Any:
    if name == "UpliftModel":
        from uplift.model import UpliftModel

        return UpliftModel
    raise AttributeError(f"module 'uplift' has no attribute {name!r}")
