"""Test data for the portfolio tests: price frames made here, and a stand-in gold table.

The stand-in `gold.daily_crypto_metrics` holds only the columns crypto_ml.data reads (date,
symbol, close, daily_return, log_return, is_complete_day), computed the way gold computes them
(returns only between consecutive days), so the pipeline can be tested against a real database in
seconds without a dbt build; the DAG end-to-end test in tests/dags uses the same helper.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crypto_analytics.config import Settings, Token
from crypto_analytics.warehouse import connect


def make_prices(
    symbols: Sequence[str],
    start: date,
    days: int,
    seed: int = 7,
    drift: float | Sequence[float] = 0.0008,
    vol: float | Sequence[float] = 0.03,
    market: float = 0.5,
) -> pd.DataFrame:
    """Daily closes (rows days, columns symbols): one market factor plus own shocks."""
    rng = np.random.default_rng(seed)
    n = len(symbols)
    drifts = np.broadcast_to(np.asarray(drift, dtype=float), (n,))
    vols = np.broadcast_to(np.asarray(vol, dtype=float), (n,))
    common = rng.standard_normal((days, 1))
    own = rng.standard_normal((days, n))
    shocks = np.sqrt(market) * common + np.sqrt(1 - market) * own
    log_returns = drifts + vols * shocks
    closes = 100 * np.exp(np.cumsum(log_returns, axis=0))
    index = pd.date_range(pd.Timestamp(start), periods=days, freq="D")
    return pd.DataFrame(closes, index=index, columns=list(symbols))


def tokens_for(settings: Settings, symbols: Sequence[str]) -> list[Token]:
    return [settings.token(s) for s in symbols]


def load_stand_in_gold(url: str, prices: pd.DataFrame) -> None:
    """Create and fill the stand-in gold.daily_crypto_metrics from daily closes (NaN = no row)."""
    rows = []
    for symbol in prices.columns:
        series = prices[symbol].dropna()
        previous_day, previous_close = None, None
        for day, close in series.items():
            current = day.date()
            consecutive = previous_day is not None and current - previous_day == timedelta(days=1)
            simple = close / previous_close - 1 if consecutive else None
            log = float(np.log(close / previous_close)) if consecutive else None
            rows.append((symbol, current, float(close), simple, log, True))
            previous_day, previous_close = current, close
    with connect(url) as conn:
        conn.execute(
            """
            create table gold.daily_crypto_metrics (
                symbol text not null, date date not null, close double precision not null,
                daily_return double precision, log_return double precision,
                is_complete_day boolean not null, primary key (symbol, date)
            )
            """
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                "copy gold.daily_crypto_metrics (symbol, date, close, daily_return, log_return, "
                "is_complete_day) from stdin"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)


#: Tokens of three categories plus a stablecoin, for the database tests.
DB_SYMBOLS = ["BTC", "ETH", "SOL", "ADA", "DOGE", "SHIB", "LINK", "UNI", "AAVE", "USDC"]
RUN_DATE = date(2024, 7, 1)  # a Monday
