"""Feature encoding for the uplift networks (uplift layer: numpy/pandas only).

``FeatureEncoder`` turns a DataFrame (numeric and categorical columns) or a numeric array into
two arrays: standardized float32 numeric features and int64 category codes, one column per
categorical feature.

Categorical handling (documented behaviour, relied on by ``UpliftModel``):

* A column is categorical when its dtype is ``object``, ``category``, ``string`` or ``bool``.
* Its training levels, sorted by their string form, get codes ``1..n_levels``.
* Code ``0`` is the explicit **unknown** index: a level never seen in training, and a missing value,
  both map to it at prediction time (no error). Each embedding table therefore has
  ``n_levels + 1`` rows.

Numeric features must be finite: NaN or infinite values raise ``ValueError`` naming the column
(impute them before fitting). The encoder's state is plain JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

UNKNOWN_CODE = 0


def _is_categorical(series: pd.Series) -> bool:
    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
    )


@dataclass
class FeatureEncoder:
    """Standardizes numeric columns and codes categorical ones (0 = unknown)."""

    numeric_columns: list[str] = field(default_factory=list)
    categorical_columns: list[str] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    levels: dict[str, list[str]] = field(default_factory=dict)
    from_array: bool = False
    # per categorical column, its level -> code table (built on first transform; not state)
    _codes: dict[str, dict[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, X: Any) -> FeatureEncoder:
        frame, from_array = _as_frame(X)
        if frame.shape[1] == 0:
            raise ValueError("X has no columns; pass at least one feature")
        numeric, categorical = [], []
        for name in frame.columns:
            (categorical if _is_categorical(frame[name]) else numeric).append(str(name))
        enc = cls(numeric_columns=numeric, categorical_columns=categorical, from_array=from_array)
        if numeric:
            values = _numeric_block(frame, numeric)
            enc.means = values.mean(axis=0).astype(float).tolist()
            std = values.std(axis=0)
            enc.scales = np.where(std > 1e-12, std, 1.0).astype(float).tolist()
        for name in categorical:
            col = frame[name]
            present = col[col.notna()].astype(str).unique()
            enc.levels[name] = sorted(present.tolist())
        return enc

    # ------------------------------------------------------------- transform
    def transform(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(numeric float32 (n, d_num), codes int64 (n, d_cat))``.

        Vectorized: numeric columns are read as one float32 block and standardized in place;
        a categorical column is factorized once (its category codes when it is a pandas
        Categorical) and only its distinct values are looked up among the training levels.
        """
        frame, from_array = _as_frame(X, copy=False)
        expected = self.numeric_columns + self.categorical_columns
        if self.from_array or (from_array and not self.categorical_columns):
            # positional features: an array-trained model, or an array for a numeric-only frame
            if frame.shape[1] != len(expected):
                raise ValueError(
                    f"X has {frame.shape[1]} columns but the model was fitted on {len(expected)}; "
                    "pass the same features in the same order"
                )
            frame = frame.set_axis(expected, axis=1)
        missing = [c for c in expected if c not in frame.columns]
        if missing:
            raise ValueError(
                f"X lacks the fitted column(s) {missing}; add them (same names as in fit)"
            )
        n = len(frame)
        if self.numeric_columns:
            numeric = _numeric_block(frame, self.numeric_columns, np.float32)
            numeric -= np.asarray(self.means, dtype=np.float32)
            numeric /= np.asarray(self.scales, dtype=np.float32)
        else:
            numeric = np.zeros((n, 0), np.float32)
        codes = np.zeros((n, len(self.categorical_columns)), dtype=np.int64)
        for j, name in enumerate(self.categorical_columns):
            codes[:, j] = _level_codes(frame[name], self._level_table(name))
        return numeric, codes

    def _level_table(self, name: str) -> dict[str, int]:
        table = self._codes.get(name)
        if table is None:
            table = {level: code for code, level in enumerate(self.levels[name], start=1)}
            self._codes[name] = table
        return table

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes: levels plus the unknown row."""
        return [len(self.levels[c]) + 1 for c in self.categorical_columns]

    @property
    def n_numeric(self) -> int:
        return len(self.numeric_columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric_columns": self.numeric_columns,
            "categorical_columns": self.categorical_columns,
            "means": self.means,
            "scales": self.scales,
            "levels": self.levels,
            "from_array": self.from_array,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureEncoder:
        return cls(**data)


def _as_frame(X: Any, *, copy: bool = True) -> tuple[pd.DataFrame, bool]:
    if isinstance(X, pd.DataFrame):
        if copy:
            frame = X.reset_index(drop=True)
            frame.columns = [str(c) for c in frame.columns]
            return frame, False
        if all(isinstance(c, str) for c in X.columns):
            return X, False
        return X.set_axis([str(c) for c in X.columns], axis=1), False
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (n_users, n_features), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise ValueError("an array X must be numeric; pass a DataFrame for categorical columns")
    return pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])], copy=False), True


def _level_codes(col: pd.Series, table: dict[str, int]) -> np.ndarray:
    """Codes 1..n_levels of ``col``'s values among the training levels (``table``: level ->
    code, by string form); a missing value or a level never seen in training gets
    ``UNKNOWN_CODE``. Only the column's distinct values are looked up."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        value_codes = col.cat.codes.to_numpy()
        uniques = col.cat.categories
    else:
        value_codes, uniques = pd.factorize(col, use_na_sentinel=True)
    lookup = np.empty(len(uniques) + 1, np.int64)
    lookup[:-1] = [table.get(str(u), UNKNOWN_CODE) for u in uniques]
    lookup[-1] = UNKNOWN_CODE  # index -1: missing values
    return lookup[value_codes]


def _numeric_block(frame: pd.DataFrame, columns: list[str], dtype: type = np.float64) -> np.ndarray:
    values = frame[columns].to_numpy(dtype=dtype, copy=True)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [columns[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise ValueError(
            f"X has NaN or infinite values in numeric column(s) {cols}; impute them before "
            "fit/predict (categorical columns may be missing: they map to 'unknown')"
        )
    return values
