"""Where interval widths come from when a model's own residuals are too few to trust.

The unit of every score here is an h-day log-price move divided by sigma × sqrt(h), sigma being
the token's trailing daily volatility at the origin (panel.py): that makes moves of tokens whose
volatilities differ by an order of magnitude, and of calm and turbulent months, comparable.

Why a count of *periods*, not of points: h-day moves from neighbouring origins overlap in all but
one day, and crypto tokens move together, so 400 residuals of 30-day forecasts from two months of
origins hold about two independent market outcomes, not 400. The number of non-overlapping h-day
periods their origins span (distinct origin days / h) is what limits a quantile's reliability.
A split-conformal 95 % quantile needs at least 1/(1 - 0.95) - 1 = 19 exchangeable scores, so the
default minimum (ml.min_calibration_periods) is 20 periods.

Why the whole panel and the whole history (`pooled_spreads`): 20 periods is a floor, not enough.
The interval between the extremes of n exchangeable draws covers a new one with probability
(n - 1)/(n + 1): 90.5 % for n = 20, so a 95 % interval read from 20 periods (600 days at 30 ahead,
one token) is too narrow on average, whatever the market does. Because the moves are in units of
each token's own volatility at their start, the moves of every token and of every year are
draws of the same quantity, so the random walk's interval is read from all of them: every
non-stablecoin token of the panel, every move that had ended by the cut-off. Tokens move
together, so pooling tokens adds fewer independent outcomes than it adds moves; the longer
history (BTC and ETH from 2017: about 100 periods at 30 days) adds the most. What this assumes:
the *shape* of the normalised distribution (its tails) is the same across tokens and years; its
scale is what sigma absorbs. A stablecoin is no random walk and keeps its own moves.

- `normalised_changes`: a token's realised h-day moves in those units, per origin;
- `calibration_window`: the look-back that spans enough periods at a horizon;
- `empirical_offsets`: the random walk's interval at each origin from the token's own recent
  moves (stablecoins, and any horizon the pool cannot serve);
- `panel_moves` / `pooled_spreads`: the moves of every token known at a cut-off, and the
  interval read from them (naive, drift and Prophet, fixed at their fit);
- `random_walk_scores` / `random_walk_fallback`: the same pooled moves as |score| (the
  ensemble's calibration set when its own validation residuals span too few periods).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crypto_ml.forecasting.panel import Panel, TokenSeries

log = logging.getLogger(__name__)

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


def panel_moves(
    panel: Panel, cutoff: pd.Timestamp, horizon: int, window_days: int | None = None
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Normalised h-day moves of every token but the stablecoins (a peg is no random walk), from
    each origin o with o + h <= cutoff (and cutoff - window_days < o when a window is given):
    (the moves, their origins). Only moves that had ended by the cut-off exist here."""
    last = cutoff - pd.Timedelta(days=horizon)
    moves, origins = [], []
    for token in panel.truncate(cutoff):  # nothing after the cut-off exists here
        if token.is_stablecoin:
            continue
        known = normalised_changes(token, horizon).loc[:last].dropna()
        if window_days is not None:
            known = known.loc[known.index > cutoff - pd.Timedelta(days=window_days)]
        moves.append(known.to_numpy())
        origins.append(known.index)
    if not moves:
        return np.empty(0), pd.DatetimeIndex([])
    days = origins[0].append(origins[1:]) if len(origins) > 1 else origins[0]
    return np.concatenate(moves), pd.DatetimeIndex(days)


@dataclass(frozen=True)
class PooledSpreads:
    """The random walk's interval in units of sigma × sqrt(h), read at a fit's cut-off from the
    whole panel's moves: per horizon, the `levels` quantiles less the mean (the centre is the
    model's), and the moves and periods they were read from. A horizon whose moves span fewer
    than the minimum periods is absent (its tokens fall back to their own moves)."""

    levels: tuple[float, ...]
    spreads: dict[int, np.ndarray]
    moves: dict[int, int]
    periods: dict[int, float]

    def offsets(self, horizon: int, sigma: np.ndarray) -> np.ndarray | None:
        """(len(levels), len(sigma)) offsets in log price for origins with daily volatility
        `sigma`, NaN where sigma is unknown or zero; None when the horizon has no spread."""
        spread = self.spreads.get(horizon)
        if spread is None:
            return None
        scale = np.where(np.asarray(sigma, dtype=float) > 0, sigma, np.nan) * math.sqrt(horizon)
        return spread[:, None] * scale[None, :]


def pooled_spreads(
    panel: Panel,
    cutoff: pd.Timestamp,
    horizons: Sequence[int],
    levels: Sequence[float],
    min_periods: int,
) -> PooledSpreads:
    """PooledSpreads from every move of every non-stablecoin token that had ended by `cutoff`."""
    spreads, counts, spans = {}, {}, {}
    for h in horizons:
        moves, origins = panel_moves(panel, cutoff, h)
        periods = calibration_periods(origins, h)
        counts[h], spans[h] = len(moves), periods
        if len(moves) >= MIN_CHANGES and periods >= min_periods:
            spreads[h] = np.quantile(moves, list(levels)) - moves.mean()
        else:
            log.info(
                "pooled intervals at %s, %d days ahead: %d moves over %.1f periods (%d needed); "
                "each token's own moves instead", cutoff.date(), h, len(moves), periods, min_periods,
            )  # fmt: skip
    return PooledSpreads(tuple(levels), spreads, counts, spans)


def random_walk_scores(
    panel: Panel, cutoff: pd.Timestamp, horizon: int, window_days: int | None = None
) -> ScoreSet:
    """|normalised h-day move| of every non-stablecoin token (panel_moves): the random walk's
    errors known at the cut-off, over the whole history unless a window is given."""
    moves, origins = panel_moves(panel, cutoff, horizon, window_days)
    if len(moves) == 0:
        return ScoreSet(np.empty(0), 0.0)
    return ScoreSet(np.abs(moves), calibration_periods(origins, horizon))


def random_walk_fallback(
    panel: Panel, cutoff: pd.Timestamp, horizons: list[int]
) -> dict[int, ScoreSet]:
    """The random walk's scores per horizon, every move known at the cut-off (as the baselines'
    pooled intervals; the module docstring says why the whole history)."""
    return {h: random_walk_scores(panel, cutoff, h) for h in horizons}
