"""Quantile gradient boosting (scikit-learn) on lagged returns and the gold indicators.

One HistGradientBoostingRegressor per (horizon, quantile) with the quantile (pinball) loss,
pooled across tokens: the target is the h-day log change divided by sigma × sqrt(h) (sigma: the
token's trailing 30-day daily volatility at the origin), so tokens share one scale-free model; the
forecast multiplies back. Crossing quantiles are sorted (monotone rearrangement). Training rows
need their target inside the training panel (cut at the cut-off) and a known sigma; features may
be NaN (gaps, warm-up) and are routed natively, never imputed.

Intervals are conformalised (CQR: Romano, Patterson & Candès, "Conformalized Quantile
Regression", 2019), because the raw quantile models are over-confident out of sample: on three
half-year windows of real history their 80 % intervals covered 63-76 % and their 95 % ones
73-91 %. At a cut-off c, per horizon h, the most recent calibration_window(gbm.calibration_days,
h, ml.min_calibration_periods) days of origins (365 at 1 and 7 days, 600 at 30) are held out;
the tail models are fitted again on origins at least h days older (no training target overlaps
a held-out one), their conformity scores max(q_lo - z, z - q_hi) on the held-out rows give the
split-conformal correction Q per interval, and the production models (fitted on every row)
forecast [q_lo - Q, q_hi + Q]. Using the correction measured on the smaller fit for the full one
is the usual practical compromise (the full fit's tails are, if anything, less over-confident).
Too little history for a held-out window of that many periods and a training set before it: that
horizon has no interval (logged), never an uncorrected one.

Permutation feature importance (scikit-learn) is computed on the median model against held-out
rows (the last fold's origins, targets after the cut-off) and saved for the dashboard.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crypto_ml.forecasting.base import FitResult, Origins
from crypto_ml.forecasting.calibration import calibration_periods, calibration_window
from crypto_ml.forecasting.conformal import conformal_radius
from crypto_ml.forecasting.features import FEATURE_NAMES, token_features
from crypto_ml.forecasting.forecasts import (
    INTERVALS,
    QUANTILE_LEVELS,
    concat_forecasts,
    make_forecasts,
)
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import Skip, training_skip
from crypto_ml.forecasting.threads import limited_threads

log = logging.getLogger(__name__)

QUANTILE_COLUMNS = list(QUANTILE_LEVELS)
TAIL_COLUMNS = [c for c in QUANTILE_COLUMNS if c != "point"]


def scaled_rows(
    panel: Panel, symbols: Sequence[str], horizons: Sequence[int], periods_per_year: int
) -> pd.DataFrame:
    """Features, sigma, base log close and scaled targets z_<h> for every observed day.

    Index: (symbol, date). A target is NaN when its day is missing or past the panel's end."""
    frames = []
    for symbol in symbols:
        if symbol not in panel:
            continue
        token = panel[symbol]
        rows = token_features(token, periods_per_year)
        rows["sigma"] = token.frame["sigma"]
        rows["base"] = token.frame["log_close"]
        for h in horizons:
            change = token.frame["log_close"].shift(-h) - token.frame["log_close"]
            rows[f"z_{h}"] = change / (token.frame["sigma"] * math.sqrt(h))
        rows = rows.loc[token.frame["observed"].to_numpy()]
        frames.append(rows.assign(symbol=symbol).set_index("symbol", append=True).swaplevel())
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames).rename_axis(["symbol", "date"])


@dataclass
class GbmModel:
    symbols: list[str]
    horizons: list[int]
    #: (horizon, quantile column) -> fitted HistGradientBoostingRegressor
    models: dict[tuple[int, str], object]
    periods_per_year: int
    threads: int
    #: The features the models were fitted on: FEATURE_NAMES less those with fewer than two
    #: distinct values in the training rows (all missing, or constant, e.g. no market cap).
    features: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    #: (horizon, coverage percent) -> the CQR correction Q in units of sigma × sqrt(h); a pair
    #: missing here has no interval. None: fitted before conformalisation (quantiles as fitted).
    corrections: dict[tuple[int, int], float] | None = None
    family: str = "gbm"

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        wanted = [h for h in horizons if any((h, c) in self.models for c in QUANTILE_COLUMNS)]
        symbols = [s for s in origins if s in self.symbols and s in panel and len(origins[s])]
        if not symbols or not wanted:
            return concat_forecasts([])
        rows = scaled_rows(panel, symbols, [], self.periods_per_year)
        index = pd.MultiIndex.from_tuples(
            [(s, d) for s in symbols for d in origins[s]], names=["symbol", "date"]
        )
        rows = rows.reindex(index)
        rows = rows.loc[np.isfinite(rows["sigma"].to_numpy()) & (rows["sigma"] > 0).to_numpy()]
        if rows.empty:
            return concat_forecasts([])
        frames = []
        with limited_threads(self.threads):
            features = rows[self.features].to_numpy()
            for h in wanted:
                z = np.column_stack(
                    [self.models[(h, c)].predict(features) for c in QUANTILE_COLUMNS]  # type: ignore[attr-defined]
                )
                z = self._calibrated(h, np.sort(z, axis=1))
                step = rows["sigma"].to_numpy() * math.sqrt(h)
                base = rows["base"].to_numpy()
                for symbol in symbols:
                    mine = rows.index.get_level_values("symbol") == symbol
                    if not mine.any():
                        continue
                    days = pd.DatetimeIndex(rows.index.get_level_values("date")[mine])
                    quantiles = {
                        c: base[mine] + z[mine, k] * step[mine]
                        for k, c in enumerate(QUANTILE_COLUMNS)
                    }
                    frames.append(make_forecasts(symbol, days, h, base[mine], quantiles))
        return concat_forecasts(frames)

    def _calibrated(self, horizon: int, z: np.ndarray) -> np.ndarray:
        """Sorted quantiles (rows) widened by the CQR corrections; NaN where none was measured."""
        if self.corrections is None:
            return z
        out = z.copy()
        for coverage, (lower, upper) in INTERVALS.items():
            lo, hi = QUANTILE_COLUMNS.index(lower), QUANTILE_COLUMNS.index(upper)
            q = self.corrections.get((horizon, coverage))
            out[:, lo] = z[:, lo] - q if q is not None else np.nan
            out[:, hi] = z[:, hi] + q if q is not None else np.nan
        finite = np.isfinite(out).all(axis=1)
        out[finite] = np.sort(out[finite], axis=1)  # a negative Q can make levels cross
        return out


@dataclass(frozen=True)
class GbmFamily:
    min_history: int
    horizons: tuple[int, ...]
    max_iter: int
    learning_rate: float
    max_leaf_nodes: int
    min_samples_leaf: int
    history_days: int
    seed: int
    threads: int
    periods_per_year: int
    calibration_days: int = 365
    min_periods: int = 20
    name: str = "gbm"
    per_symbol: bool = False

    def _model(self, level: float):  # noqa: ANN202 - a scikit-learn estimator
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            loss="quantile",
            quantile=level,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=self.seed,
        )

    def conformal_corrections(
        self, train: pd.DataFrame, features: list[str], horizon: int, cutoff: pd.Timestamp
    ) -> dict[int, float]:
        """CQR corrections per coverage for one horizon (module docstring); {} when the history
        holds no held-out window of min_periods periods with a training set before it."""
        window = calibration_window(self.calibration_days, horizon, self.min_periods)
        dates = train.index.get_level_values("date")
        held_out = train.loc[dates > cutoff - pd.Timedelta(days=horizon + window)]
        before = train.loc[dates <= cutoff - pd.Timedelta(days=2 * horizon + window)]
        periods = calibration_periods(held_out.index.get_level_values("date"), horizon)
        if periods < self.min_periods or len(before) < 2 * self.min_samples_leaf:
            log.info(
                "gbm: %d days ahead: a held-out window of %.1f periods (%d needed) and %d "
                "training rows before it: no calibrated interval", horizon, periods,
                self.min_periods, len(before),
            )  # fmt: skip
            return {}
        # a feature can vary over all training rows yet be constant or missing in the older ones
        # (a long indicator's warm-up): scikit-learn cannot bin it, so this fit leaves it out
        varied = [f for f in features if before[f].nunique(dropna=True) >= 2]
        if not varied:
            log.info("gbm: %d days ahead: no feature varies before the held-out window", horizon)
            return {}
        x, z = before[varied].to_numpy(), before[f"z_{horizon}"].to_numpy()
        tails = {c: self._model(QUANTILE_LEVELS[c]).fit(x, z) for c in TAIL_COLUMNS}
        x_held = held_out[varied].to_numpy()
        z_held = held_out[f"z_{horizon}"].to_numpy()
        predicted = np.sort(
            np.column_stack([tails[c].predict(x_held) for c in TAIL_COLUMNS]), axis=1
        )
        columns = {c: predicted[:, k] for k, c in enumerate(TAIL_COLUMNS)}
        out = {}
        for coverage, (lower, upper) in INTERVALS.items():
            scores = np.maximum(columns[lower] - z_held, z_held - columns[upper])
            q = conformal_radius(scores, coverage / 100)
            if q is not None:
                out[coverage] = q
        return out

    def fit(self, panel: Panel, cutoff: pd.Timestamp, symbols: Sequence[str]) -> FitResult:
        panel = panel.truncate(cutoff)  # targets after the cut-off do not exist for the fit
        skips: list[Skip] = []
        usable = []
        for symbol in symbols:
            if symbol not in panel:
                continue
            skip = training_skip(panel[symbol], self.name, cutoff, self.min_history)
            if skip:
                skips.append(skip)
            else:
                usable.append(symbol)
        rows = scaled_rows(panel, usable, self.horizons, self.periods_per_year)
        models: dict[tuple[int, str], object] = {}
        features = list(FEATURE_NAMES)
        if not rows.empty:
            recent = rows.index.get_level_values("date") > cutoff - pd.Timedelta(
                days=self.history_days
            )
            rows = rows.loc[recent & np.isfinite(rows["sigma"].to_numpy())]
            features = [f for f in FEATURE_NAMES if rows[f].nunique(dropna=True) >= 2]
            dropped = sorted(set(FEATURE_NAMES) - set(features))
            if dropped:
                log.info("gbm: features without variation in the training rows: %s", dropped)
        corrections: dict[tuple[int, int], float] = {}
        with limited_threads(self.threads):
            for h in self.horizons:
                if rows.empty:
                    break
                train = rows.loc[np.isfinite(rows[f"z_{h}"].to_numpy())]
                if len(train) < 2 * self.min_samples_leaf:
                    log.info("gbm: %d training rows for %d days ahead: not fitted", len(train), h)
                    continue
                x, y = train[features].to_numpy(dtype=float, copy=True), train[f"z_{h}"].to_numpy()
                # A feature that varies over all rows can be missing in every row whose h-day
                # target is known (one that starts within the last h days: a new feed, a long
                # warm-up). scikit-learn cannot bin an all-missing column, and cannot split on a
                # constant one, so such a column is made constant: the same as leaving the
                # feature out at this horizon, while the model keeps one feature list.
                missing = np.isnan(x).all(axis=0)
                if missing.any():
                    x[:, missing] = 0.0
                    log.info(
                        "gbm: %d days ahead: no value in the training rows, left out: %s",
                        h, [f for f, m in zip(features, missing, strict=True) if m],
                    )  # fmt: skip
                for column, level in QUANTILE_LEVELS.items():
                    models[(h, column)] = self._model(level).fit(x, y)
                for coverage, q in self.conformal_corrections(train, features, h, cutoff).items():
                    corrections[(h, coverage)] = q
        fitted = sorted(usable) if models else []
        model = GbmModel(
            fitted, list(self.horizons), models, self.periods_per_year, self.threads, features,
            corrections,
        )  # fmt: skip
        return FitResult(model, skips)


def permutation_importance_table(
    model: GbmModel, panel: Panel, origins: Origins, repeats: int, seed: int
) -> pd.DataFrame:
    """Permutation importance of the median model per horizon on the rows at `origins` whose
    targets are known in `panel`. Columns: horizon, feature, importance_mean, importance_std."""
    from sklearn.inspection import permutation_importance

    symbols = [s for s in origins if s in model.symbols]
    rows = scaled_rows(panel, symbols, model.horizons, model.periods_per_year)
    records = []
    if rows.empty:
        return pd.DataFrame(columns=["horizon", "feature", "importance_mean", "importance_std"])
    index = pd.MultiIndex.from_tuples(
        [(s, d) for s in symbols for d in origins[s]], names=["symbol", "date"]
    )
    rows = rows.reindex(index)
    with limited_threads(model.threads):
        for h in model.horizons:
            median = model.models.get((h, "point"))
            held_out = rows.loc[np.isfinite(rows[f"z_{h}"].to_numpy())]
            if median is None or len(held_out) < 5:
                continue
            result = permutation_importance(
                median,
                held_out[model.features].to_numpy(),
                held_out[f"z_{h}"].to_numpy(),
                scoring="neg_mean_absolute_error",
                n_repeats=repeats,
                random_state=seed,
            )
            for k, feature in enumerate(model.features):
                records.append(
                    {
                        "horizon": h,
                        "feature": feature,
                        "importance_mean": float(result.importances_mean[k]),
                        "importance_std": float(result.importances_std[k]),
                    }
                )
    return pd.DataFrame(
        records, columns=["horizon", "feature", "importance_mean", "importance_std"]
    )
