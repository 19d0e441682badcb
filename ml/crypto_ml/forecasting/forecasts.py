"""The frame every price model returns, so metrics, the ensemble and the writers read one shape.

All values are natural logs of prices: a forecast of a log price is symmetric where the model is,
errors are scale-free across tokens (PEPE trades near 1e-6, BTC near 1e5), and exp() of a
quantile is the quantile of the price, so intervals stay valid after conversion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Quantile columns and their levels; `point` is the median (the last close for naive).
QUANTILE_LEVELS: dict[str, float] = {
    "q025": 0.025,
    "q10": 0.10,
    "point": 0.50,
    "q90": 0.90,
    "q975": 0.975,
}
#: Central intervals and their (lower, upper) columns.
INTERVALS: dict[int, tuple[str, str]] = {80: ("q10", "q90"), 95: ("q025", "q975")}

#: symbol, origin (the day of the newest close used), horizon (days), target_date, base (log close
#: at the origin), then log-price quantiles.
FORECAST_COLUMNS: list[str] = [
    "symbol", "origin", "horizon", "target_date", "base", "point", "q025", "q10", "q90", "q975",
]  # fmt: skip


def empty_forecasts() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in FORECAST_COLUMNS})
    frame["symbol"] = frame["symbol"].astype("object")
    frame["origin"] = pd.Series(dtype="datetime64[ns]")
    frame["target_date"] = pd.Series(dtype="datetime64[ns]")
    frame["horizon"] = frame["horizon"].astype("int64")
    return frame


def make_forecasts(
    symbol: str,
    origins: pd.DatetimeIndex,
    horizon: int,
    base: np.ndarray,
    quantiles: dict[str, np.ndarray],
) -> pd.DataFrame:
    """A forecast frame for one symbol and horizon; rows whose point is not finite are dropped."""
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "origin": origins,
            "horizon": horizon,
            "target_date": origins + pd.Timedelta(days=horizon),
            "base": base,
            **{column: quantiles[column] for column in QUANTILE_LEVELS},
        }
    )
    return frame.loc[np.isfinite(frame["point"].to_numpy()), FORECAST_COLUMNS].reset_index(
        drop=True
    )


def concat_forecasts(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_forecasts()
    return pd.concat(frames, ignore_index=True).loc[:, FORECAST_COLUMNS]


def sort_quantiles(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Monotone rearrangement (Chernozhukov et al.): quantile models fitted separately can cross;
    sorting each row's quantiles restores order without changing any marginal's coverage much."""
    columns = list(QUANTILE_LEVELS)
    values = forecasts[columns].to_numpy()
    finite = np.isfinite(values).all(axis=1)
    values[finite] = np.sort(values[finite], axis=1)
    out = forecasts.copy()
    out[columns] = values
    return out
