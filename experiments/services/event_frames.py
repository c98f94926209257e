"""Vectorized validation of bulk-imported events: one pandas frame (a chunk of a file) at a time.

Layer: experiments.services. The checks are those of the REST API's ``validate_event`` (required
non-empty strings with length limits, ISO-8601 timestamps with a time zone and not in the future,
finite numbers, JSON-object properties within the size limit), applied column-wise with pandas and
numpy instead of row by row; NUL characters are refused too, since PostgreSQL text cannot hold them.
The first bad row of the first failing check raises a ``ValidationError`` that names the row (1-based,
counted over the whole file) and the column.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from experiments.db import utcnow
from experiments.errors import ValidationError
from experiments.services.events import MAX_FUTURE, MAX_PROPERTIES_BYTES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REQUIRED = ("event_id", "unit_id", "name", "occurred_at")
OPTIONAL = ("value", "properties")
TEXT_LIMITS = (("event_id", 200), ("unit_id", 200), ("name", 100))
_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"
_BAD = "!"  # marker for a properties cell that is not a JSON object


def _fail(offset: int, column: str, mask: np.ndarray, message: str) -> None:
    import numpy as np

    if mask.any():
        row = offset + int(np.flatnonzero(mask)[0])
        raise ValidationError(f"row {row + 1}.{column}", message)


def _is_text(values: pd.Series) -> np.ndarray:
    """True where a cell holds a string; C-speed for string columns, a loop only for mixed ones."""
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if isinstance(values.dtype, pd.StringDtype):
        return values.notna().to_numpy(dtype=bool)
    if values.dtype == object:
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
            return values.notna().to_numpy(dtype=bool)
        return values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    return np.zeros(len(values), dtype=bool)


def _text_column(values: pd.Series, offset: int, column: str, limit: int) -> pd.Series:
    is_text = _is_text(values)
    text = values.where(is_text, "").astype("string")
    _fail(
        offset,
        column,
        ~is_text | (text.str.strip() == "").to_numpy(dtype=bool),
        "is required (a non-empty string)",
    )
    _fail(
        offset,
        column,
        (text.str.len() > limit).to_numpy(dtype=bool),
        f"is longer than {limit} characters",
    )
    _fail(
        offset,
        column,
        text.str.contains("\x00", regex=False).to_numpy(dtype=bool),
        "contains a NUL character; remove it",
    )
    return text


def _timestamps(stamps: pd.Series, offset: int) -> pd.Series:
    import numpy as np
    import pandas as pd

    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        parsed = stamps.dt.tz_convert("UTC")
        _fail(offset, "occurred_at", parsed.isna().to_numpy(), "is required (a timestamp)")
    else:
        naive = pd.api.types.is_datetime64_dtype(stamps.dtype)
        _fail(
            offset,
            "occurred_at",
            np.full(len(stamps), naive, dtype=bool),
            "has no time zone; store UTC timestamps",
        )
        as_text = stamps.where(_is_text(stamps), None).astype("string")
        _fail(
            offset,
            "occurred_at",
            ~as_text.str.contains(_TZ_SUFFIX, regex=True).fillna(False).to_numpy(dtype=bool),
            "needs an ISO-8601 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z",
        )
        parsed = pd.to_datetime(as_text, utc=True, format="ISO8601", errors="coerce")
        _fail(offset, "occurred_at", parsed.isna().to_numpy(), "is not a valid ISO-8601 timestamp")
    latest = pd.Timestamp(utcnow() + MAX_FUTURE)
    _fail(
        offset,
        "occurred_at",
        (parsed > latest).to_numpy(dtype=bool),
        "is in the future; send the time the event happened",
    )
    return parsed.dt.floor("us").astype("datetime64[us, UTC]")


def _values(raw: pd.Series, offset: int) -> pd.Series:
    import numpy as np
    import pandas as pd

    given = raw.notna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(raw.dtype):
        is_bool = given
    elif raw.dtype == object:
        is_bool = raw.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    else:
        is_bool = np.zeros(len(raw), dtype=bool)
    _fail(offset, "value", is_bool, "must be a number or empty")
    value = pd.to_numeric(raw, errors="coerce").astype("float64")
    _fail(offset, "value", given & value.isna().to_numpy(), "must be a number or empty")
    _fail(offset, "value", given & ~np.isfinite(value.fillna(0).to_numpy()), "must be finite")
    return value


def _as_json(v: object) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    if isinstance(v, str):
        try:
            loaded = json.loads(v)
        except ValueError:
            return _BAD
        return json.dumps(loaded) if isinstance(loaded, dict) else _BAD
    return _BAD


def _properties(raw: pd.Series, offset: int) -> pd.Series:
    import numpy as np
    import pandas as pd

    texts = np.full(len(raw), None, dtype=object)
    given = np.flatnonzero(raw.notna().to_numpy(dtype=bool))
    if len(given):  # JSON work only for the cells that hold something
        cells = raw.to_numpy(dtype=object)
        texts[given] = [_as_json(cells[i]) for i in given]
        bad = np.zeros(len(raw), dtype=bool)
        bad[given] = [t == _BAD for t in texts[given]]
        _fail(offset, "properties", bad, "must be a JSON object or empty")
        sizes = np.zeros(len(raw), dtype=np.int64)
        sizes[given] = [len(t) for t in texts[given]]
        _fail(
            offset,
            "properties",
            sizes > MAX_PROPERTIES_BYTES,
            f"is larger than {MAX_PROPERTIES_BYTES} bytes",
        )
    return pd.Series(texts, index=raw.index, dtype=object)


def clean_chunk(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    """Validate a chunk and return it normalized; rows are numbered from ``offset``.

    Columns of the result: event_id, unit_id, name (str), occurred_at (UTC, microseconds),
    value (float64, NaN when empty), properties (JSON text or None).
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValidationError(
            missing[0], f"column {missing[0]!r} is missing; required: {', '.join(REQUIRED)}"
        )
    unknown = sorted(set(frame.columns) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ValidationError(
            unknown[0], f"unknown column; allowed: {', '.join(REQUIRED + OPTIONAL)}"
        )
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    for column, limit in TEXT_LIMITS:
        out[column] = _text_column(frame[column], offset, column, limit)
    out["occurred_at"] = _timestamps(frame["occurred_at"], offset)
    out["value"] = _values(frame["value"], offset) if "value" in frame else np.nan
    out["properties"] = _properties(frame["properties"], offset) if "properties" in frame else None
    return out
