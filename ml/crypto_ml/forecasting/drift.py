"""Is the champion still as good live as it was in its backtest?

Each prediction run (and each training) takes the champion family's forecasts whose target day
fell in the last ml.drift.window_days and has a close in gold, and compares their mean absolute
error on log prices with the family's validation error from the walk-forward backtest, per
horizon. A ratio above ml.drift.threshold with at least ml.drift.min_points forecasts is drift:
an alert row (ml.model_drift, is_drift, read by the alert engine through gold.model_drift) and a
request to retrain (the ml_inference DAG then triggers ml_training). Fewer points: the check is
recorded with no verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DriftCheck:
    as_of_date: date
    model: str
    model_version: str | None
    horizon_days: int
    window_start: date
    window_end: date
    n_points: int
    realised_mae: float | None
    validation_mae: float | None
    error_ratio: float | None
    threshold: float
    is_drift: bool
    retraining_requested: bool


def check_drift(
    predictions: pd.DataFrame,
    validation_mae: Mapping[int, float],
    *,
    as_of: date,
    model: str,
    model_version: str | None,
    window_days: int,
    threshold: float,
    min_points: int,
) -> list[DriftCheck]:
    """One check per horizon with a validation error, from prediction rows (point,
    realised_close, target_date, horizon_days) of `model`."""
    window_end = as_of
    window_start = (pd.Timestamp(as_of) - pd.Timedelta(days=window_days - 1)).date()
    rows = predictions.loc[
        (pd.to_datetime(predictions["target_date"]).dt.date >= window_start)
        & (pd.to_datetime(predictions["target_date"]).dt.date <= window_end)
        & predictions["realised_close"].notna()
    ]
    checks = []
    for horizon, validation in sorted(validation_mae.items()):
        mine = rows.loc[rows["horizon_days"] == horizon]
        errors = np.abs(
            np.log(mine["point"].to_numpy()) - np.log(mine["realised_close"].to_numpy())
        )
        n = int(len(errors))
        realised = float(errors.mean()) if n else None
        ratio = realised / validation if realised is not None and validation > 0 else None
        drift = n >= min_points and ratio is not None and ratio > threshold
        checks.append(
            DriftCheck(
                as_of_date=as_of,
                model=model,
                model_version=model_version,
                horizon_days=int(horizon),
                window_start=window_start,
                window_end=window_end,
                n_points=n,
                realised_mae=realised,
                validation_mae=validation if validation > 0 else None,
                error_ratio=ratio,
                threshold=threshold,
                is_drift=drift,
                retraining_requested=drift,
            )
        )
    return checks


def drift_frame(checks: list[DriftCheck]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in checks])
