"""Test data for the forecasting tests: panels made here, real daily history, a stand-in mart.

- `random_walk_features`: seeded log-random-walk closes (GARCH(1,1) volatility, Student-t
  shocks, a small drift) for a few tokens, optionally a stablecoin and a gap, in
  gold.token_daily_features' long layout;
- `real_features`: daily Binance closes from ../shared/data (daily/binance_recent_rongyouwow);
- `fast_ml`: the `ml` settings shrunk so a model fits in about a second (and calibration
  look-backs short enough for a 500-day history);
- `load_stand_in_mart`: creates gold.token_daily_features with the columns crypto_ml.data reads
  and fills it, and gold.price_predictions as a plain view over ml.price_predictions, for
  database tests that do not need dbt (tests/dbt and the DAG test build the real ones).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from crypto_ml.data import FEATURE_COLUMNS

from crypto_analytics.config import MlConfig, get_settings

HORIZONS = [1, 7, 30]


def random_walk_features(
    symbols: Sequence[str] = ("AAA", "BBB", "CCC"),
    days: int = 500,
    *,
    start: str = "2023-01-01",
    seed: int = 7,
    stablecoin: str | None = None,
    gap: tuple[str, str, int] | None = None,
) -> pd.DataFrame:
    """Long feature rows; `gap` = (symbol, first missing day, days missing)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    frames = []
    for k, symbol in enumerate(symbols):
        # GARCH(1,1) returns (alpha 0.08, beta 0.9, daily volatility about 3 %), t(4) shocks
        shocks = rng.standard_t(4, size=days) / np.sqrt(2)
        returns = np.empty(days)
        variance = 0.03**2
        for i in range(days):
            returns[i] = np.sqrt(variance) * shocks[i]
            variance = 0.02 * 0.03**2 + 0.08 * returns[i] ** 2 + 0.9 * variance
        log_close = np.log(10.0 ** (k + 1)) + np.cumsum(0.0005 + returns)
        frames.append(pd.DataFrame({"symbol": symbol, "date": dates, "close": np.exp(log_close),
                                    "is_stablecoin": False}))  # fmt: skip
    if stablecoin:
        frames.append(pd.DataFrame({"symbol": stablecoin, "date": dates,
                                    "close": 1 + rng.normal(0, 0.0005, days),
                                    "is_stablecoin": True}))  # fmt: skip
    rows = pd.concat(frames, ignore_index=True)
    if gap:
        symbol, first, length = gap
        missing = pd.date_range(first, periods=length, freq="D")
        rows = rows.loc[~((rows["symbol"] == symbol) & rows["date"].isin(missing))]
    return rows.reset_index(drop=True)


def real_features(
    shared: Path, symbols: Sequence[str], last_days: int | None = None
) -> pd.DataFrame:
    """Daily Binance closes (USDT) of `symbols` from ../shared/data, optionally the last N days."""
    frames = []
    for symbol in symbols:
        raw = pd.read_csv(shared / "daily" / "binance_recent_rongyouwow" / f"{symbol}USDT_1d.csv")
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "date": pd.to_datetime(raw["timestamp"]).dt.tz_localize(None).dt.normalize(),
                "close": raw["close"].astype(float),
                "is_stablecoin": False,
            }
        )
        frames.append(frame.tail(last_days) if last_days else frame)
    return pd.concat(frames, ignore_index=True)


def fast_ml(**overrides: object) -> MlConfig:
    """The configured `ml` settings, shrunk for tests (2 folds of 10 days, tiny models)."""
    ml = get_settings().ml
    fast = ml.model_copy(
        update={
            "folds": 2,
            "fold_days": 10,
            "lstm": ml.lstm.model_copy(
                update={"epochs": 2, "hidden_size": 8, "window_days": 20, "batch_size": 256}
            ),
            "gbm": ml.gbm.model_copy(
                update={
                    "max_iter": 15,
                    "min_samples_leaf": 20,
                    "permutation_repeats": 2,
                    "calibration_days": 120,
                }
            ),
            "prophet": ml.prophet.model_copy(update={"history_days": 400}),
            # short test histories: look-backs of 5 horizons (150 days at 30 ahead), not 20
            "min_calibration_periods": 5,
            "min_history_days": ml.min_history_days.model_copy(
                update={"prophet": 120, "lstm": 120, "gbm": 120, "garch": 150}
            ),
        }
    )
    return fast.model_copy(update=overrides)


def load_stand_in_mart(url: str, features: pd.DataFrame) -> None:
    """Create gold.token_daily_features (the columns crypto_ml.data reads) and fill it."""
    rows = features.copy()
    for column in FEATURE_COLUMNS:
        if column not in rows:
            rows[column] = "Other" if column == "category" else np.nan
    rows = rows.loc[:, list(FEATURE_COLUMNS)]
    rows["date"] = pd.to_datetime(rows["date"]).dt.date
    buffer = io.StringIO()
    rows.to_csv(buffer, index=False, header=False, na_rep="")
    columns = ", ".join(FEATURE_COLUMNS)
    definitions = ", ".join(
        f"{c} {'text' if c in ('symbol', 'category') else 'date' if c == 'date' else 'boolean' if c == 'is_stablecoin' else 'double precision'}"
        for c in FEATURE_COLUMNS
    )
    with psycopg.connect(url) as conn:
        conn.execute(f"create table gold.token_daily_features ({definitions})")
        # the dbt view over the predictions (dbt/models/gold/forecasting/price_predictions.sql)
        conn.execute("create view gold.price_predictions as select * from ml.price_predictions")
        with conn.cursor().copy(
            f"copy gold.token_daily_features ({columns}) from stdin with (format csv)"
        ) as copy:
            copy.write(buffer.getvalue())
