"""Where interval widths come from when a model's own residuals are too few to trust.

The unit of every score here is an h-day log-price move divided by sigma × sqrt(h), sigma being
the token's trailing daily volatility at the origin (panel.py): that makes moves of tokens whose
volatilities differ by an order of magnitude, and of calm and turbulent months, comparable.

Why a count of *periods*, not of points: h-day moves from neighbouring origins overlap in all but
one day, and crypto tokens move together, so 400 residuals of 30-day forecasts from two months of
origins hold about two independent market outcomes, not 400. The number of non-overlapping h-day
periods their origins span (distinct origin days / h) is what limits a quantile's reliability.
A split-conformal 95 % quantile needs at least 1/(1 - 0.95) - 1 = 19 exchangeable scores, so the
default minimum (ml.min_calibration_periods) is 20 periods, and every empirical window is at least
that many horizons long: 20 days at 1 day ahead, 600 days at 30.

- `normalised_changes`: a token's realised h-day moves in those units, per origin;
- `calibration_window`: the look-back that spans enough periods at a horizon;
- `empirical_offsets`: the random walk's interval at each origin from the token's own recent
  moves (naive, drift and Prophet use it);
- `random_walk_scores` / `random_walk_fallback`: the same moves pooled over tokens, as |score|
  (the ensemble's calibration set when its own validation residuals span too few periods).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crypto_ml.forecasting.panel import Panel, TokenSeries

#: Fewest moves an empirical interval is read from (below it: no interval, never a guess).
MIN_CHANGES = 30


def calibration_periods(origins: pd.Series | pd.Index, horizon: int) -> float:
    """Non-overlapping `horizon`-day periods spanned by the origins: distinct days / horizon."""
    return pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(origins))).size / horizon


def calibration_window(window_days: int, horizon: int, min_periods: int) -> int:
    """Days of history that hold at least `min_periods` periods of `horizon` days."""
    return max(window_days, min_periods * horizon)


def normalised_changes(token: TokenSeries, horizon: int) -> pd.Series:
    """(log close[o + h] - log close[o]) / (sigma[o] × sqrt(h)), indexed by the origin o; NaN
    where either close is missing (a gap is never bridged) or sigma is unknown or zero."""
    frame = token.frame
    sigma = frame["sigma"].where(frame["sigma"] > 0)
    change = frame["log_close"].shift(-horizon) - frame["log_close"]
    return change / (sigma * math.sqrt(horizon))


def trailing_windows(values: np.ndarray, positions: np.ndarray, window: int) -> np.ndarray:
    """(len(positions), window): values[p - window + 1 .. p] for each p, NaN before the start."""
    padded = np.concatenate([np.full(window - 1, np.nan), np.asarray(values, dtype=float)])
    return sliding_window_view(padded, window)[positions]


def empirical_offsets(
    token: TokenSeries, positions: np.ndarray, horizon: int, levels: list[float], window: int
) -> tuple[np.ndarray, np.ndarray]:
    """The random walk's quantile offsets at each origin, in log price.

    At the origin in row `positions[i]` of the token's frame: the `levels` quantiles of the
    normalised h-day moves that had ended by that origin within the last `window` days, less
    their mean (the centre is the model's), times sigma × sqrt(h) at the origin. Returns
    (offsets of shape (len(levels), len(positions)), whether each origin had MIN_CHANGES moves
    and a known sigma); offsets are NaN where it had not."""
    moves = normalised_changes(token, horizon).shift(horizon)  # indexed by the day a move ends
    windows = trailing_windows(moves.to_numpy(), positions, window)
    sigma = token.frame["sigma"].to_numpy()[positions]
    enough = (np.isfinite(windows).sum(axis=1) >= MIN_CHANGES) & np.isfinite(sigma)
    offsets = np.full((len(levels), len(positions)), np.nan)
    if enough.any():
        chosen = windows[enough]
        spread = np.nanquantile(chosen, levels, axis=1) - np.nanmean(chosen, axis=1)
        offsets[:, enough] = spread * sigma[enough] * math.sqrt(horizon)
    return offsets, enough


@dataclass(frozen=True)
class ScoreSet:
    """Nonconformity scores and the non-overlapping h-day periods their origins span."""

    scores: np.ndarray
    periods: float


def random_walk_scores(
    panel: Panel, cutoff: pd.Timestamp, horizon: int, window_days: int
) -> ScoreSet:
    """|normalised h-day move| of every token but the stablecoins (a peg is no random walk), from
    each origin o with cutoff - window_days < o and o + h <= cutoff: the random walk's errors,
    known at the cut-off."""
    first = cutoff - pd.Timedelta(days=window_days)
    last = cutoff - pd.Timedelta(days=horizon)
    scores, origins = [], []
    for token in panel.truncate(cutoff):  # nothing after the cut-off exists here
        if token.is_stablecoin:
            continue
        moves = normalised_changes(token, horizon).loc[first:last].dropna()
        moves = moves.loc[moves.index > first]
        scores.append(np.abs(moves.to_numpy()))
        origins.append(moves.index)
    if not scores:
        return ScoreSet(np.empty(0), 0.0)
    days = origins[0].append(origins[1:]) if len(origins) > 1 else origins[0]
    return ScoreSet(np.concatenate(scores), calibration_periods(days, horizon))


def random_walk_fallback(
    panel: Panel, cutoff: pd.Timestamp, horizons: list[int], window_days: int, min_periods: int
) -> dict[int, ScoreSet]:
    """The random walk's scores per horizon over calibration_window(window_days, h, min_periods)."""
    return {
        h: random_walk_scores(panel, cutoff, h, calibration_window(window_days, h, min_periods))
        for h in horizons
    }
