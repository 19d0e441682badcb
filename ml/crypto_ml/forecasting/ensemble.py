"""The ensemble: members weighted by walk-forward error, intervals by conformal calibration.

At a cut-off c, from member forecasts whose target day is at most c (and whose origin is within
ml.ensemble.calibration_days before c):
- weights, per (token, horizon): each member's weight is 1 / its mean absolute error on log
  prices there, normalised to sum to 1 over the members forecasting that origin (a member
  missing for a token or an origin is left out and the others renormalised);
- the ensemble point is the weighted mean of the members' log-price points;
- the radius of each central interval (80 %, 95 %) is the split-conformal quantile
  (conformal.py) of nonconformity scores |realised - point| / (sigma × sqrt(h)), sigma the
  token's trailing daily volatility at the origin, pooled over tokens per horizon; the interval
  is point ± radius × sigma × sqrt(h).
Which scores (`Calibration.source`): the ensemble's own validation residuals when their origins
span at least ml.min_calibration_periods non-overlapping h-day periods (calibration.py says why
periods, not points); otherwise `random_walk`, the random walk's errors in the same units, every
move of every non-stablecoin token that had ended by the cut-off (calibration.random_walk_scores;
calibration.py says why the whole history, the same pool as the baselines' intervals), its radii
scaled by the ensemble's error ratio to the random walk (`Calibration.error_ratio`,
error_ratio.py): the mean normalised |error| of the ensemble's points over the naive member's on
the same validation points, at least 1. An ensemble that errs 18 % more than the random walk
gets 18 % wider intervals than the random walk's (on the real history its 30-day 80 % intervals
covered 70 % without it and 71 % with it: the ratios measured at the cut-offs, 1.00-1.12, were
smaller than the test window's 1.18). At 30 days the own residuals of a six-fold backtest span
about five periods, so 30-day intervals come from the random walk in production; at 1 day they
are the ensemble's own from the first fold on. No score at all: no interval, never a guess.
The weights and own radii come from the same residuals (5 weights are a negligible fit), and in
the backtest fold k uses only targets known at its cut-off, so the ensemble is scored from the
second fold on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crypto_ml.forecasting.calibration import ScoreSet, calibration_periods
from crypto_ml.forecasting.conformal import conformal_radius, normalised_scores
from crypto_ml.forecasting.error_ratio import KEY, error_ratio
from crypto_ml.forecasting.forecasts import FORECAST_COLUMNS, INTERVALS, empty_forecasts

log = logging.getLogger(__name__)

#: Floor of a member's MAE when weighting (a constant series' naive MAE is 0).
MAE_FLOOR = 1e-12


@dataclass(frozen=True)
class Calibration:
    """Where one horizon's conformal radii came from."""

    #: "validation" (the ensemble's own residuals), "random_walk" (the fallback) or "none"
    source: str
    #: scores the radii were read from
    n_scores: int
    #: non-overlapping h-day periods those scores span
    periods: float
    #: own validation scores available, and the periods they span (what decided the source)
    n_validation: int
    validation_periods: float
    #: the random_walk radii's scale: the ensemble's mean error over the random walk's (>= 1)
    error_ratio: float = 1.0


@dataclass
class EnsembleState:
    members: list[str]
    #: symbol, horizon, model, weight
    weights: pd.DataFrame
    #: (horizon, coverage percent) -> radius in units of sigma × sqrt(h), or None
    radii: dict[tuple[int, int], float | None]
    calibration: dict[int, Calibration] = field(default_factory=dict)
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
    scored: pd.DataFrame,
    cutoff: pd.Timestamp,
    calibration_days: int,
    members: list[str],
    *,
    min_periods: int,
    fallback: Mapping[int, ScoreSet],
) -> EnsembleState:
    """Weights and conformal radii from member forecasts with `y` (realised log close) and
    `sigma` (daily volatility at the origin), using targets up to `cutoff` only.

    `fallback` maps each horizon to the random walk's scores known at the cut-off
    (calibration.random_walk_scores); a horizon whose own residuals span fewer than
    `min_periods` periods is calibrated on them."""
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
    calibration: dict[int, Calibration] = {}
    horizons = sorted({*fallback, *(int(h) for h in points["horizon"].unique())})
    for h in horizons:
        rows = points.loc[points["horizon"] == h]
        own = normalised_scores(
            rows["y"].to_numpy(), rows["point"].to_numpy(), rows["sigma"].to_numpy(),
            rows["horizon"].to_numpy(),
        )  # fmt: skip
        finite = np.isfinite(own)
        own_periods = calibration_periods(rows["origin"].loc[finite], h)
        ratio = 1.0
        if own_periods >= min_periods:
            source, scores, periods = "validation", own[finite], own_periods
        else:
            rw = fallback.get(h, ScoreSet(np.empty(0), 0.0))
            scores = rw.scores[np.isfinite(rw.scores)]
            source, periods = ("random_walk" if len(scores) else "none"), rw.periods
            ratio = error_ratio(rows, usable)
        calibration[h] = Calibration(
            source, len(scores), periods, int(finite.sum()), own_periods, ratio
        )
        for coverage in INTERVALS:
            radius = conformal_radius(scores, coverage / 100)
            radii[(h, coverage)] = None if radius is None else radius * ratio
        log.info(
            "ensemble at %s, %d days ahead: radii from %s (%d scores, x %.3f; own residuals: %d "
            "over %.1f periods, %d needed)", cutoff.date(), h, source, len(scores), ratio,
            int(finite.sum()), own_periods, min_periods,
        )  # fmt: skip
    return EnsembleState(sorted(members), weights, radii, calibration)


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
