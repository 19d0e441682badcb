"""The random walk (naive) and the random walk with drift, with empirical intervals.

Every other model is judged against `naive` (MASE = MAE / naive MAE on the same points).

Points: naive = the origin's close; drift = close × exp(mean h-day change over the last
ml.empirical_window_days), which needs MIN_CHANGES changes (before that: no drift forecast).

Intervals (calibration.empirical_offsets): the quantiles of the token's own h-day moves that had
ended by the origin, each in units of the volatility at its own start (sigma × sqrt(h)), less
their mean, times today's sigma × sqrt(h). Two reasons. Volatility clusters, so a move measured
against the volatility of its time says more about tomorrow's than a raw move from a calm or a
wild month; and the look-back is at least ml.min_calibration_periods horizons long (600 days at
30 days ahead), because a year holds only twelve non-overlapping 30-day moves, too few for a
2.5 % quantile. A change spanning a missing day is never formed (gaps are not filled); with fewer
than MIN_CHANGES moves or no sigma the interval is missing, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_ml.forecasting.base import FitResult, Origins
from crypto_ml.forecasting.calibration import (
    MIN_CHANGES,
    calibration_window,
    empirical_offsets,
    trailing_windows,
)
from crypto_ml.forecasting.forecasts import QUANTILE_LEVELS, concat_forecasts, make_forecasts
from crypto_ml.forecasting.panel import Panel, TokenSeries
from crypto_ml.forecasting.policy import training_skip

#: The interval columns and their levels (the point is the model's own centre).
INTERVAL_LEVELS = [(c, q) for c, q in QUANTILE_LEVELS.items() if c != "point"]


def empirical_quantiles(
    token: TokenSeries,
    position: np.ndarray,
    horizon: int,
    centre: np.ndarray,
    window_days: int,
    min_periods: int,
) -> dict[str, np.ndarray]:
    """The point (`centre`, log price) and the random walk's empirical interval around it: one
    definition for every model that borrows these intervals (naive, drift, Prophet)."""
    window = calibration_window(window_days, horizon, min_periods)
    offsets, _ = empirical_offsets(
        token, position, horizon, [q for _, q in INTERVAL_LEVELS], window
    )
    quantiles = {"point": centre}
    quantiles.update({c: centre + offsets[k] for k, (c, _) in enumerate(INTERVAL_LEVELS)})
    return quantiles


@dataclass(frozen=True)
class RandomWalkModel:
    family: str
    symbols: list[str]
    window_days: int
    with_drift: bool
    min_periods: int = 20

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        frames = []
        for symbol, days in origins.items():
            if symbol not in self.symbols or symbol not in panel or len(days) == 0:
                continue
            token = panel[symbol]
            log_close = token.frame["log_close"]
            position = log_close.index.get_indexer(days)
            base = log_close.to_numpy()[position]
            for horizon in horizons:
                centre = base.copy()
                if self.with_drift:
                    changes = trailing_windows(
                        (log_close - log_close.shift(horizon)).to_numpy(), position,
                        self.window_days,
                    )  # fmt: skip
                    known = np.isfinite(changes).sum(axis=1) >= MIN_CHANGES
                    centre = np.full(len(position), np.nan)  # no drift estimate yet: no forecast
                    if known.any():
                        centre[known] = base[known] + np.nanmean(changes[known], axis=1)
                quantiles = empirical_quantiles(
                    token, position, horizon, centre, self.window_days, self.min_periods
                )
                frames.append(make_forecasts(symbol, days, horizon, base, quantiles))
        return concat_forecasts(frames)


@dataclass(frozen=True)
class RandomWalk:
    """The family: `with_drift` False is naive, True is drift."""

    with_drift: bool
    window_days: int
    min_history: int
    min_periods: int = 20
    per_symbol: bool = True

    @property
    def name(self) -> str:
        return "drift" if self.with_drift else "naive"

    def fit(self, panel: Panel, cutoff: pd.Timestamp, symbols: Sequence[str]) -> FitResult:
        panel = panel.truncate(cutoff)
        skips, fitted = [], []
        for symbol in symbols:
            if symbol not in panel:
                continue
            skip = training_skip(panel[symbol], self.name, cutoff, self.min_history)
            if skip:
                skips.append(skip)
            else:
                fitted.append(symbol)
        model = RandomWalkModel(
            self.name, fitted, self.window_days, self.with_drift, self.min_periods
        )
        return FitResult(model, skips)
