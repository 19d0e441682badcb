"""The ensemble: members weighted by walk-forward error, intervals by conformal calibration.

At a cut-off c, from member forecasts whose target day is at most c (and whose origin is within
ml.ensemble.calibration_days before c):
- weights, per (token, horizon): each member's weight is 1 / its mean absolute error on log
  prices there, normalised to sum to 1 over the members forecasting that origin (a member
  missing for a token or an origin is left out and the others renormalised);
- the ensemble point is the weighted mean of the members' log-price points;
- the radius of each central interval (80 %, 95 %) is the split-conformal quantile
  (conformal.py) of the ensemble's own errors in units of sigma × sqrt(h), pooled over tokens per
  horizon; the interval is point ± radius × sigma × sqrt(h) with sigma the token's trailing daily
  volatility at the origin. Too few residuals for a level: no interval, never a guess.
The weights and radii come from the same residuals (5 weights are a negligible fit), and in the
backtest fold k uses only folds before it, so the ensemble is scored from the second fold on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_ml.forecasting.conformal import conformal_radius, normalised_scores
from crypto_ml.forecasting.forecasts import FORECAST_COLUMNS, INTERVALS, empty_forecasts

#: Floor of a member's MAE when weighting (a constant series' naive MAE is 0).
MAE_FLOOR = 1e-12
KEY = ["symbol", "origin", "horizon"]


@dataclass
class EnsembleState:
    members: list[str]
    #: symbol, horizon, model, weight
    weights: pd.DataFrame
    #: (horizon, coverage percent) -> radius in units of sigma × sqrt(h), or None
    radii: dict[tuple[int, int], float | None]
    n_calibration: dict[int, int]
    family: str = "ensemble"

    @property
    def symbols(self) -> list[str]:
        return sorted(self.weights["symbol"].unique())


def combine_points(members: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Weighted mean of member points per (symbol, origin, horizon): KEY, base, target_date, point."""
    joined = members.merge(weights, on=["symbol", "horizon", "model"], how="inner")
    if joined.empty:
        return pd.DataFrame(columns=[*KEY, "base", "target_date", "point"])
    joined["weighted"] = joined["point"] * joined["weight"]
    grouped = joined.groupby(KEY, sort=True)
    out = grouped.agg(
        base=("base", "first"),
        target_date=("target_date", "first"),
        weighted=("weighted", "sum"),
        weight=("weight", "sum"),
    )
    out["point"] = out["weighted"] / out["weight"]
    return out.drop(columns=["weighted", "weight"]).reset_index()


def fit_ensemble(
    scored: pd.DataFrame, cutoff: pd.Timestamp, calibration_days: int, members: list[str]
) -> EnsembleState:
    """Weights and conformal radii from member forecasts with `y` (realised log close) and
    `sigma` (daily volatility at the origin), using targets up to `cutoff` only."""
    usable = scored.loc[
        scored["model"].isin(members)
        & (scored["target_date"] <= cutoff)
        & (scored["origin"] > cutoff - pd.Timedelta(days=calibration_days))
        & np.isfinite(scored["y"].to_numpy())
    ]
    errors = usable.assign(abs_error=(usable["point"] - usable["y"]).abs())
    mae = errors.groupby(["symbol", "horizon", "model"])["abs_error"].mean().reset_index()
    mae["weight"] = 1.0 / mae["abs_error"].clip(lower=MAE_FLOOR)
    mae["weight"] /= mae.groupby(["symbol", "horizon"])["weight"].transform("sum")
    weights = mae.loc[:, ["symbol", "horizon", "model", "weight"]]

    points = combine_points(usable, weights)
    truth = usable.drop_duplicates(KEY).loc[:, [*KEY, "y", "sigma"]]
    points = points.merge(truth, on=KEY, how="left")
    radii: dict[tuple[int, int], float | None] = {}
    counts: dict[int, int] = {}
    for _, rows in points.groupby("horizon"):
        h = int(rows["horizon"].iloc[0])
        scores = normalised_scores(
            rows["y"].to_numpy(), rows["point"].to_numpy(), rows["sigma"].to_numpy(),
            rows["horizon"].to_numpy(),
        )  # fmt: skip
        counts[h] = int(np.isfinite(scores).sum())
        for coverage in INTERVALS:
            radii[(h, coverage)] = conformal_radius(scores, coverage / 100)
    return EnsembleState(sorted(members), weights, radii, counts)


def ensemble_forecasts(state: EnsembleState, members: pd.DataFrame) -> pd.DataFrame:
    """Ensemble forecasts from member forecasts (with `sigma` at the origin)."""
    points = combine_points(members.loc[members["model"].isin(state.members)], state.weights)
    if points.empty:
        return empty_forecasts()
    sigma = members.drop_duplicates(KEY).loc[:, [*KEY, "sigma"]]
    out = points.merge(sigma, on=KEY, how="left")
    scale = out["sigma"].to_numpy() * np.sqrt(out["horizon"].to_numpy().astype(float))
    for coverage, (lower, upper) in INTERVALS.items():
        radius = np.array(
            [
                np.nan if (r := state.radii.get((int(h), coverage))) is None else r
                for h in out["horizon"]
            ]
        )
        out[lower] = out["point"] - radius * scale
        out[upper] = out["point"] + radius * scale
    return out.loc[:, FORECAST_COLUMNS]
