"""Score a population with a saved uplift model: per-unit effects of every incentive (jobs layer).

The output has ``unit_id`` and, for each target the model predicts (``conversion``, ``revenue``)
and each incentive, a column ``effect_<target>__<incentive>``: the effect of that incentive versus
no incentive. It is written to a temporary file beside the target and renamed into place, so a
failure never leaves a partial file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

OUTPUT_FORMATS = (".parquet", ".csv")


def effect_column(target: str, incentive: Any) -> str:
    return f"effect_{target}__{incentive}"


def check_output(path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ValidationError(
            "output",
            f"{path.name}: unknown extension {path.suffix or '(none)'!r}; end the file name in "
            + " or ".join(OUTPUT_FORMATS),
        )
    if not path.parent.is_dir():
        raise ValidationError("output", f"folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise ValidationError("output", f"{path} is a folder; give a file name")


def model_features(model: Any) -> list[str]:
    encoder = model.encoder_
    return [*encoder.numeric_columns, *encoder.categorical_columns]


def score_population(model: Any, population: pd.DataFrame) -> pd.DataFrame:
    """unit_id plus one effect column per (target, incentive), rows in the population's order."""
    import pandas as pd

    features = model_features(model)
    missing = [c for c in features if c not in population.columns]
    if missing:
        raise ValidationError(
            "features",
            f"the population lacks the model's feature column(s) {', '.join(missing)}; "
            "score the population the model was trained on (same feature columns)",
        )
    X = population[features]
    columns: dict[str, Any] = {"unit_id": population["unit_id"].to_numpy()}
    try:
        for target, mu in model.outcomes_by_target(X).items():
            for j, incentive in enumerate(model.incentives_):
                columns[effect_column(target, incentive)] = mu[:, j + 1] - mu[:, 0]
    except ValueError as exc:  # the encoder's input validation (NaN features, ...)
        raise ValidationError("features", str(exc)) from exc
    return pd.DataFrame(columns)


def write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Parquet or CSV by extension; a temporary file renamed into place (same folder)."""
    check_output(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix.lower() == ".parquet":
            frame.to_parquet(temp, index=False)
        else:
            frame.to_csv(temp, index=False)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
