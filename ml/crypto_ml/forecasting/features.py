"""The gradient-boosting model's features, all known at the close of their own day.

Returns are divided by the token's trailing daily volatility (sigma, panel.py) so one model can
pool tokens whose prices and volatilities differ by orders of magnitude; the indicators come from
gold.token_daily_features (silver's, equal to the `ta` library). Everything is a lag or a trailing
window of the token's own rows: a feature at day t never reads day t + 1. Missing values (gaps,
warm-up) stay NaN; HistGradientBoosting routes them natively, nothing is imputed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from crypto_ml.forecasting.panel import TokenSeries

FEATURE_NAMES: list[str] = [
    "return_lag_0", "return_lag_1", "return_lag_2", "return_lag_3", "return_lag_4",
    "change_7d", "change_30d", "volatility_30d", "volatility_ratio_7_30", "volatility_90d",
    "rsi_14", "macd_histogram_rel", "bb_percent_b", "bb_bandwidth", "close_vs_sma_20",
    "close_vs_sma_50", "close_vs_sma_200", "drawdown", "log_market_cap", "day_of_week",
]  # fmt: skip


def token_features(token: TokenSeries, periods_per_year: int) -> pd.DataFrame:
    """FEATURE_NAMES for every day of the token's calendar frame."""
    frame = token.frame
    sigma = frame["sigma"]
    returns = frame["log_return"]
    log_close = frame["log_close"]
    close = frame["close"]
    out = pd.DataFrame(index=frame.index)
    for lag in range(5):
        out[f"return_lag_{lag}"] = returns.shift(lag) / sigma
    out["change_7d"] = (log_close - log_close.shift(7)) / (sigma * math.sqrt(7))
    out["change_30d"] = (log_close - log_close.shift(30)) / (sigma * math.sqrt(30))
    out["volatility_30d"] = sigma * math.sqrt(periods_per_year)
    out["volatility_ratio_7_30"] = returns.rolling(7, min_periods=5).std() / sigma
    out["volatility_90d"] = frame["volatility_90d"]
    out["rsi_14"] = frame["rsi_14"] / 100
    out["macd_histogram_rel"] = frame["macd_histogram"] / close
    out["bb_percent_b"] = frame["bb_percent_b"]
    out["bb_bandwidth"] = frame["bb_bandwidth"]
    for window in (20, 50, 200):
        out[f"close_vs_sma_{window}"] = close / frame[f"sma_{window}"] - 1
    out["drawdown"] = frame["drawdown"]
    out["log_market_cap"] = np.log(frame["market_cap"])
    out["day_of_week"] = pd.DatetimeIndex(frame.index).day_of_week.astype(float)
    return out.replace([np.inf, -np.inf], np.nan).loc[:, FEATURE_NAMES]
