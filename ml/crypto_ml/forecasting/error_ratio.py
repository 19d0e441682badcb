"""A model's error relative to the random walk, and the random walk's radii widened by it.

Two models centre the random walk's interval radii on their own points: the ensemble when its
own residuals span too few periods (ensemble.py), and Prophet always (prophet_model.py). Those
radii fit the random walk's errors; a point that errs more than the random walk's needs wider
ones. The ratio is the mean normalised |error| (conformal.normalised_scores) of the model's
points over the naive member's on the same validation points, never below 1: a short stretch
can show a model worse than the random walk, not that its tails are thinner. Too few periods to
read a tail are still hundreds of points, enough for a mean.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crypto_ml.forecasting.conformal import normalised_scores
from crypto_ml.forecasting.forecasts import QUANTILE_LEVELS

#: The member whose errors the random-walk radii stand for (catalogue's random walk).
RANDOM_WALK_MEMBER = "naive"
KEY = ["symbol", "origin", "horizon"]


def error_ratio(points: pd.DataFrame, usable: pd.DataFrame) -> float:
    """Mean normalised |error| of `points` (one horizon: KEY, point, y, sigma) over the random
    walk member's on the same points (its rows in `usable`); 1 when it has none of them, never
    below 1."""
    naive = usable.loc[usable["model"] == RANDOM_WALK_MEMBER, [*KEY, "point"]]
    both = points.merge(naive.rename(columns={"point": "naive"}), on=KEY, how="inner")
    if both.empty:
        return 1.0
    args = (both["sigma"].to_numpy(), both["horizon"].to_numpy())
    own = normalised_scores(both["y"].to_numpy(), both["point"].to_numpy(), *args)
    walk = normalised_scores(both["y"].to_numpy(), both["naive"].to_numpy(), *args)
    finite = np.isfinite(own) & np.isfinite(walk)
    if not finite.any() or walk[finite].sum() <= 0:
        return 1.0
    return max(1.0, float(own[finite].sum() / walk[finite].sum()))


def validation_ratios(
    scored: pd.DataFrame, model: str, cutoff: pd.Timestamp, calibration_days: int
) -> dict[int, float]:
    """Per horizon, `model`'s error ratio on the scored backtest forecasts known at `cutoff`
    (target at most the cut-off, origin within `calibration_days` before it), the window the
    ensemble's weights use."""
    known = scored.loc[
        (scored["target_date"] <= cutoff)
        & (scored["origin"] > cutoff - pd.Timedelta(days=calibration_days))
        & np.isfinite(scored["y"].to_numpy())
    ]
    own = known.loc[known["model"] == model]
    return {
        int(h): error_ratio(own.loc[own["horizon"] == h], known)
        for h in sorted(scored.loc[scored["model"] == model, "horizon"].unique())
    }


def widen_intervals(forecasts: pd.DataFrame, ratios: Mapping[int, float]) -> pd.DataFrame:
    """Every quantile's distance from the point multiplied by its horizon's ratio (1 if none)."""
    if forecasts.empty or not ratios:
        return forecasts
    out = forecasts.copy()
    scale = out["horizon"].map(lambda h: ratios.get(int(h), 1.0)).to_numpy(dtype=float)
    point = out["point"].to_numpy(dtype=float)
    for column in QUANTILE_LEVELS:
        if column != "point":
            out[column] = point + (out[column].to_numpy(dtype=float) - point) * scale
    return out
