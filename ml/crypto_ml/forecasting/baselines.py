"""The random walk (naive) and the random walk with drift, with empirical intervals.

Every other model is judged against `naive` (MASE = MAE / naive MAE on the same points).

Points: naive = the origin's close; drift = close × exp(mean h-day change over the last
ml.empirical_window_days), which needs MIN_CHANGES changes (before that: no drift forecast).

Intervals (calibration.pooled_spreads, read at the fit's cut-off): the quantiles of the h-day
moves of every non-stablecoin token of the panel that had ended by the cut-off, the whole history,
each in units of the volatility at its own start (sigma × sqrt(h)), less their mean, times the
origin's sigma × sqrt(h). Volatility clusters, so a move measured against the volatility of its
time says more about tomorrow's than a raw move from a calm or a wild month; and a token's own
recent moves are too few for a tail quantile (600 days hold twenty 30-day periods, whose extremes
cover 90.5 % of new draws: calibration.py says why pooling). A stablecoin, or a horizon whose pool
spans fewer than ml.min_calibration_periods periods, uses the token's own moves that had ended by
the origin over the last year or that many horizons (calibration.empirical_offsets). A change
spanning a missing day is never formed (gaps are not filled); with too few moves or no sigma the
interval is missing, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_ml.forecasting.base import FitResult, Origins
from crypto_ml.forecasting.calibration import (
    MIN_CHANGES,
    PooledSpreads,
    calibration_window,
    empirical_offsets,
    pooled_spreads,
    trailing_windows,
)
from crypto_ml.forecasting.forecasts import QUANTILE_LEVELS, concat_forecasts, make_forecasts
from crypto_ml.forecasting.panel import Panel, TokenSeries
from crypto_ml.forecasting.policy import training_skip

#: The interval columns and their levels (the point is the model's own centre).
INTERVAL_LEVELS = [(c, q) for c, q in QUANTILE_LEVELS.items() if c != "point"]


def interval_spreads(
    panel: Panel, cutoff: pd.Timestamp, horizons: Sequence[int], min_periods: int
) -> PooledSpreads:
    """The pooled interval levels every model borrowing the random walk's intervals fixes at
    its fit (naive, drift, Prophet)."""
    levels = [q for _, q in INTERVAL_LEVELS]
    return pooled_spreads(panel, cutoff, horizons, levels, min_periods)


def empirical_quantiles(
    token: TokenSeries,
    position: np.ndarray,
    horizon: int,
    centre: np.ndarray,
    window_days: int,
    min_periods: int,
    pooled: PooledSpreads | None = None,
) -> dict[str, np.ndarray]:
    """The point (`centre`, log price) and the random walk's empirical interval around it: one
    definition for every model that borrows these intervals (naive, drift, Prophet). The pooled
    spreads when they serve the horizon, else the token's own moves (module docstring)."""
    offsets = None
    if pooled is not None and not token.is_stablecoin:
        offsets = pooled.offsets(horizon, token.frame["sigma"].to_numpy()[position])
    if offsets is None:
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
    #: The interval spreads read at the fit's cut-off (None: each token's own moves).
    pooled: PooledSpreads | None = None

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
                    token, position, horizon, centre, self.window_days, self.min_periods,
                    self.pooled,
                )  # fmt: skip
                frames.append(make_forecasts(symbol, days, horizon, base, quantiles))
        return concat_forecasts(frames)


@dataclass(frozen=True)
class RandomWalk:
    """The family: `with_drift` False is naive, True is drift."""

    with_drift: bool
    window_days: int
    min_history: int
    min_periods: int = 20
    #: Horizons whose pooled interval spreads the fit reads (others: each token's own moves).
    horizons: tuple[int, ...] = (1, 7, 30)
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
        pooled = interval_spreads(panel, cutoff, self.horizons, self.min_periods)
        model = RandomWalkModel(
            self.name, fitted, self.window_days, self.with_drift, self.min_periods, pooled
        )
        return FitResult(model, skips)
