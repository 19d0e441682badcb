"""The random walk (naive) and the random walk with drift, with empirical intervals.

Every other model is judged against `naive` (MASE = MAE / naive MAE on the same points).

Both read the empirical distribution of h-day log-price changes over the last
ml.empirical_window_days before each origin (overlapping changes; a change spanning a missing day
is not formed, so gaps are never filled). naive: point = the origin's close, quantiles = the
changes' quantiles with their mean removed (no drift). drift: point = close × exp(mean h-day
change), quantiles = the changes' quantiles as they are. At least MIN_CHANGES changes are needed
for an interval; before that the interval is missing, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crypto_ml.forecasting.base import FitResult, Origins
from crypto_ml.forecasting.forecasts import QUANTILE_LEVELS, concat_forecasts, make_forecasts
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import training_skip

MIN_CHANGES = 30


@dataclass(frozen=True)
class RandomWalkModel:
    family: str
    symbols: list[str]
    window_days: int
    with_drift: bool

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        levels = [(c, q) for c, q in QUANTILE_LEVELS.items() if c != "point"]
        frames = []
        for symbol, days in origins.items():
            if symbol not in self.symbols or symbol not in panel or len(days) == 0:
                continue
            log_close = panel[symbol].frame["log_close"]
            position = log_close.index.get_indexer(days)
            base = log_close.to_numpy()[position]
            for horizon in horizons:
                windows = trailing_windows(
                    (log_close - log_close.shift(horizon)).to_numpy(), position, self.window_days
                )
                enough = np.isfinite(windows).sum(axis=1) >= MIN_CHANGES
                mean = np.full(len(position), np.nan)
                spread = np.full((len(levels), len(position)), np.nan)
                if enough.any():
                    mean[enough] = np.nanmean(windows[enough], axis=1)
                    spread[:, enough] = (
                        np.nanquantile(windows[enough], [q for _, q in levels], axis=1)
                        - mean[enough]
                    )
                centre = base + np.nan_to_num(mean) if self.with_drift else base.copy()
                if self.with_drift:
                    centre[~enough] = np.nan  # no drift estimate yet: no forecast
                quantiles = {"point": centre}
                quantiles.update({c: centre + spread[k] for k, (c, _) in enumerate(levels)})
                frames.append(make_forecasts(symbol, days, horizon, base, quantiles))
        return concat_forecasts(frames)


def trailing_windows(values: np.ndarray, positions: np.ndarray, window: int) -> np.ndarray:
    """(len(positions), window): values[p - window + 1 .. p] for each p, NaN before the start."""
    padded = np.concatenate([np.full(window - 1, np.nan), values])
    return sliding_window_view(padded, window)[positions]


@dataclass(frozen=True)
class RandomWalk:
    """The family: `with_drift` False is naive, True is drift."""

    with_drift: bool
    window_days: int
    min_history: int
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
        model = RandomWalkModel(self.name, fitted, self.window_days, self.with_drift)
        return FitResult(model, skips)
