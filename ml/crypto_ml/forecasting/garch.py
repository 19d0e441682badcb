"""Volatility forecasts: GARCH(1,1) (the `arch` package) and the rolling 30-day baseline.

Both forecast the variance of the h-day log return from an origin (the sum of the daily
variances over the next h days) and report it annualised with 365 days:
volatility_annualised = sqrt(periods_per_year / h × variance_h). They are compared by QLIKE
against the realised variance (metrics.py).

GARCH: constant mean, GARCH(1,1), normal errors, fitted on the last history days of daily log
returns × 100 (arch's optimiser wants returns in percent). Gap treatment: a return after a
missing day does not exist (panel.py), so the model sees the remaining returns in order; nothing
is filled. Between fits (inside a fold, and at each prediction refresh) the fitted parameters
filter the newest returns (`arch_model(...).fix(params)`), so a forecast at day t conditions on
every return up to t. A fit that does not converge, or is non-stationary (alpha + beta >= 1:
no long-run variance), skips the token with the reason.

Rolling baseline (`rolling_30d`): the sample variance of the last 30 daily returns (at least 20),
flat over the horizon.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_ml.forecasting.base import Origins
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import Skip, training_skip

log = logging.getLogger(__name__)

VOLATILITY_COLUMNS = ["symbol", "origin", "horizon", "target_date", "variance_h"]
ROLLING_WINDOW = 30
ROLLING_MIN_RETURNS = 20
#: arch's optimiser wants returns in percent (DataScaleWarning otherwise).
PERCENT = 100.0


def empty_volatility() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series(dtype="object"),
            "origin": pd.Series(dtype="datetime64[ns]"),
            "horizon": pd.Series(dtype="int64"),
            "target_date": pd.Series(dtype="datetime64[ns]"),
            "variance_h": pd.Series(dtype="float64"),
        }
    )


def annualised(variance_h: pd.Series | np.ndarray, horizon: pd.Series | np.ndarray,
               periods_per_year: int) -> np.ndarray:  # fmt: skip
    """sqrt(periods_per_year / h × variance of the h-day log return)."""
    return np.sqrt(np.asarray(periods_per_year / np.asarray(horizon) * np.asarray(variance_h)))


def _frame(
    symbol: str, origins: pd.DatetimeIndex, horizon: int, variance: np.ndarray
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "origin": origins,
            "horizon": horizon,
            "target_date": origins + pd.Timedelta(days=horizon),
            "variance_h": variance,
        }
    )
    return frame.loc[np.isfinite(frame["variance_h"].to_numpy())]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty_volatility()


def _returns(panel: Panel, symbol: str, until: pd.Timestamp, days: int) -> pd.Series:
    returns = panel[symbol].frame["log_return"].loc[:until].dropna()
    return returns.loc[returns.index > until - pd.Timedelta(days=days)] * PERCENT


@dataclass
class GarchModel:
    symbols: list[str]
    #: symbol -> arch parameter values (mu, omega, alpha[1], beta[1])
    params: dict[str, dict[str, float]]
    history_days: int
    family: str = "garch"

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        from arch import arch_model

        frames = []
        longest = max(horizons)
        for symbol, days in origins.items():
            if symbol not in self.params or symbol not in panel or len(days) == 0:
                continue
            span = (days.max() - days.min()).days
            returns = _returns(panel, symbol, days.max(), self.history_days + span)
            present = days[days.isin(returns.index)]
            if present.empty:
                continue
            fixed = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fix(
                pd.Series(self.params[symbol])
            )
            forecast = fixed.forecast(horizon=longest, start=present.min(), reindex=False)
            daily = forecast.variance.reindex(present).to_numpy() / PERCENT**2
            cumulative = np.cumsum(daily, axis=1)
            for h in horizons:
                frames.append(_frame(symbol, present, h, cumulative[:, h - 1]))
        return _concat(frames)


@dataclass(frozen=True)
class GarchFamily:
    min_history: int
    history_days: int
    name: str = "garch"
    per_symbol: bool = True

    def fit(
        self, panel: Panel, cutoff: pd.Timestamp, symbols: Sequence[str]
    ) -> tuple[GarchModel, list[Skip]]:
        from arch import arch_model
        from arch.utility.exceptions import ConvergenceWarning

        panel = panel.truncate(cutoff)
        params: dict[str, dict[str, float]] = {}
        skips: list[Skip] = []
        for symbol in symbols:
            if symbol not in panel:
                continue
            skip = training_skip(panel[symbol], self.name, cutoff, self.min_history)
            if skip:
                skips.append(skip)
                continue
            returns = _returns(panel, symbol, cutoff, self.history_days)
            model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, rescale=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # reported as a skip below
                result = model.fit(disp="off", options={"maxiter": 500})
            persistence = float(result.params["alpha[1]"] + result.params["beta[1]"])
            if result.convergence_flag != 0:
                message = getattr(result.optimization_result, "message", "")
                skips.append(
                    Skip(
                        self.name, symbol, "train", f"GARCH fit did not converge ({message})"
                    ).log()
                )
            elif persistence >= 1:
                skips.append(
                    Skip(
                        self.name, symbol, "train",
                        f"non-stationary fit (alpha + beta = {persistence:.4f}): no long-run variance",
                    ).log()
                )  # fmt: skip
            else:
                params[symbol] = {str(k): float(v) for k, v in result.params.items()}
        return GarchModel(sorted(params), params, self.history_days), skips


@dataclass(frozen=True)
class RollingVolatility:
    """The baseline: the last 30 days' sample variance of daily log returns, flat over h."""

    family: str = "rolling_30d"

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        frames = []
        for symbol, days in origins.items():
            if symbol not in panel or len(days) == 0:
                continue
            daily = (
                panel[symbol]
                .frame["log_return"]
                .rolling(ROLLING_WINDOW, min_periods=ROLLING_MIN_RETURNS)
                .var()
                .reindex(days)
                .to_numpy()
            )
            for h in horizons:
                frames.append(_frame(symbol, days, h, h * daily))
        return _concat(frames)


def realised_variance(panel: Panel, forecasts: pd.DataFrame) -> np.ndarray:
    """Sum of squared daily log returns over (origin, origin + h]; NaN unless all h exist."""
    out = np.full(len(forecasts), np.nan)
    for _, rows in forecasts.groupby(["symbol", "horizon"]):
        symbol, h = str(rows["symbol"].iloc[0]), int(rows["horizon"].iloc[0])
        squared = panel[symbol].frame["log_return"] ** 2
        # forward window: the sum over the next h days, needing all h
        ahead = squared[::-1].rolling(h, min_periods=h).sum()[::-1].shift(-1)
        out[rows.index.to_numpy()] = ahead.reindex(rows["origin"]).to_numpy()
    return out
