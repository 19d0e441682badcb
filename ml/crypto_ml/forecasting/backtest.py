"""Run a model family through the walk-forward folds, then fit it on everything for production.

At each fold the family is fitted on the panel cut at the cut-off, and forecasts from every
observed day of the fold with the panel cut at the fold's last origin (so no model can read
past its fold even by mistake; within the fold each forecast reads up to its own origin, which
the leakage tests check). Fit and forecast times are measured per family for `make bench` and
MLflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crypto_ml.forecasting.base import FittedModel, ModelFamily
from crypto_ml.forecasting.boosting import GbmModel, permutation_importance_table
from crypto_ml.forecasting.folds import Fold
from crypto_ml.forecasting.forecasts import empty_forecasts
from crypto_ml.forecasting.garch import (
    GarchFamily,
    GarchModel,
    RollingVolatility,
    realised_variance,
)
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import Skip

log = logging.getLogger(__name__)


@dataclass
class Timing:
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    fits: int = 0


@dataclass
class FamilyRun:
    """One family's backtest forecasts (with `fold`), its production fit and what it skipped."""

    family: str
    forecasts: pd.DataFrame
    final: FittedModel | GarchModel | None
    skips: list[Skip]
    timing: Timing
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)


def fold_origins(panel: Panel, symbols: Sequence[str], fold: Fold) -> dict[str, pd.DatetimeIndex]:
    """Observed days of each symbol inside the fold's origin window."""
    out = {}
    for symbol in symbols:
        if symbol not in panel:
            continue
        days = panel[symbol].observed_days()
        days = days[(days >= fold.first_origin) & (days <= fold.last_origin)]
        if len(days):
            out[symbol] = days
    return out


def attach_truth(forecasts: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """Add `y` (log close of the target day, NaN if it has none) and `sigma` (the token's trailing
    daily volatility at the origin)."""
    out = forecasts.reset_index(drop=True).copy()
    out["y"] = np.nan
    out["sigma"] = np.nan
    for symbol, rows in out.groupby("symbol"):
        frame = panel[str(symbol)].frame
        out.loc[rows.index, "y"] = frame["log_close"].reindex(rows["target_date"]).to_numpy()
        out.loc[rows.index, "sigma"] = frame["sigma"].reindex(rows["origin"]).to_numpy()
    return out


def run_family(
    family: ModelFamily,
    panel: Panel,
    plan: list[Fold],
    horizons: Sequence[int],
    symbols: Sequence[str],
    *,
    final_fit: bool = True,
    importance_repeats: int = 0,
    seed: int = 0,
) -> FamilyRun:
    timing = Timing()
    frames = []
    importance = pd.DataFrame()
    skips: list[Skip] = []
    for fold in plan:
        started = time.perf_counter()
        result = family.fit(panel.truncate(fold.cutoff), fold.cutoff, symbols)
        fitted, skips = result.fitted, result.skips
        timing.fit_seconds += time.perf_counter() - started
        timing.fits += 1
        view = panel.truncate(fold.last_origin)
        origins = fold_origins(view, fitted.symbols, fold)
        started = time.perf_counter()
        forecasts = fitted.forecast(view, origins, horizons)
        timing.predict_seconds += time.perf_counter() - started
        frames.append(forecasts.assign(fold=fold.number))
        if importance_repeats and isinstance(fitted, GbmModel) and fold is plan[-1]:
            importance = permutation_importance_table(
                fitted, panel, origins, importance_repeats, seed
            )
        log.info("%s fold %d (cut-off %s): %d forecasts", family.name, fold.number,
                 fold.cutoff.date(), len(forecasts))  # fmt: skip
    # the skips reported are the production fit's, or without one the last fold's
    final = None
    if final_fit:
        started = time.perf_counter()
        result = family.fit(panel, panel.as_of, symbols)
        timing.fit_seconds += time.perf_counter() - started
        timing.fits += 1
        final, skips = result.fitted, result.skips
    frames = [f for f in frames if not f.empty]
    backtest = (
        pd.concat(frames, ignore_index=True)
        if frames
        else empty_forecasts().assign(fold=pd.Series(dtype="int64"))
    )
    return FamilyRun(family.name, backtest, final, skips, timing, importance)


def run_volatility(
    family: GarchFamily,
    panel: Panel,
    plan: list[Fold],
    horizons: Sequence[int],
    symbols: Sequence[str],
    *,
    final_fit: bool = True,
) -> tuple[pd.DataFrame, GarchModel | None, list[Skip], Timing]:
    """GARCH and the rolling baseline through the same folds: forecasts with `model`, `fold` and
    `realised` (the realised h-day variance), the production GARCH fit, its skips, its timing."""
    timing = Timing()
    frames = []
    baseline = RollingVolatility()
    skips: list[Skip] = []
    for fold in plan:
        started = time.perf_counter()
        garch, skips = family.fit(panel.truncate(fold.cutoff), fold.cutoff, symbols)
        timing.fit_seconds += time.perf_counter() - started
        timing.fits += 1
        view = panel.truncate(fold.last_origin)
        started = time.perf_counter()
        frames.append(
            garch.forecast(view, fold_origins(view, garch.symbols, fold), horizons).assign(
                model="garch", fold=fold.number
            )
        )
        timing.predict_seconds += time.perf_counter() - started
        # the baseline is scored on the same tokens and origins as GARCH
        frames.append(
            baseline.forecast(view, fold_origins(view, garch.symbols, fold), horizons).assign(
                model=baseline.family, fold=fold.number
            )
        )
    frames = [f for f in frames if not f.empty]
    forecasts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not forecasts.empty:
        forecasts["realised"] = realised_variance(panel, forecasts)
    final = None
    if final_fit:
        started = time.perf_counter()
        final, skips = family.fit(panel, panel.as_of, symbols)
        timing.fit_seconds += time.perf_counter() - started
        timing.fits += 1
    return forecasts, final, skips, timing
