"""A deterministic fingerprint of a training frame: same data, same sha256 (layer: jobs).

What it covers, in this order, each part length-prefixed so that no two frames collide by
concatenation: the number of rows; then, for each column of ``[unit_id, arm, *outcomes,
*sorted(features)]``, its name, a kind tag and its values with the rows sorted by ``unit_id``.
Values are hashed by kind: booleans and integers as little-endian int64, other numbers as
little-endian float64 (so 1 and 1.0 in an integer and a float column differ by the kind tag,
not by accident), everything else (strings, categoricals) as its UTF-8 text with missing values
written as an explicit marker. Not covered: column order in the population file, rows dropped
before the frame was built (units without features), the variant keys, pandas' dtypes beyond
the kind, and the model's parameters (those are recorded next to the fingerprint).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

_MISSING = "\x00<NA>\x00"


def frame_fingerprint(frame: pd.DataFrame, features: Sequence[str], outcomes: Sequence[str]) -> str:
    """sha256 hex of unit ids, arms, outcomes and feature values (see the module docstring)."""
    import numpy as np
    import pandas as pd

    columns = ["unit_id", "arm", *outcomes, *sorted(features)]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"the training frame lacks {missing}")
    ordered = frame[columns].sort_values("unit_id", kind="mergesort").reset_index(drop=True)
    digest = hashlib.sha256()

    def part(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    part(str(len(ordered)).encode())
    for name in columns:
        values = ordered[name]
        part(name.encode())
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
            part(b"int")
            part(values.to_numpy(dtype=np.int64).astype("<i8").tobytes())
        elif pd.api.types.is_numeric_dtype(values):
            part(b"float")
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan).astype("<f8")
            numbers[np.isnan(numbers)] = np.nan  # one NaN bit pattern
            part(numbers.tobytes())
        else:
            part(b"text")
            text = [_MISSING if pd.isna(v) else str(v) for v in values.astype(object)]
            part("\x1f".join(text).encode())
    return digest.hexdigest()
