"""The offline demo's shape through the real pipeline: synthetic daily candles for a long history
plus hourly candles for the recent days, landed in bronze, built into gold by dbt.

Gold rebuilds each day from the finest complete interval silver has, so on the day the hourly
history starts a token's day switches from the daily candle to 24 hourly ones. When the
synthetic intervals were independent series, that day's return was nonsense (AXS +91,216 % in
the demo). Here the switch must be invisible: every gold day equals the source's daily candle,
and no return at the switch stands out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.dbt_runner import run_dbt
from crypto_analytics.ingestion.pipeline import ingest, plan_requests
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The token whose demo return exploded, a major, a tiny-priced meme coin and a stablecoin.
SYMBOLS = ["AXS", "BTC", "PEPE", "USDT"]
UNTIL = datetime(2025, 6, 1, tzinfo=UTC)
HOURLY_START = UNTIL - timedelta(days=12)
DAILY_START = UNTIL - timedelta(days=90)


@pytest.fixture
def gold(warehouse_url: str, tmp_path) -> pd.DataFrame:
    """gold.daily_crypto_metrics built from a small synthetic demo (daily + hourly overlap)."""
    requests = plan_requests(
        sources=["synthetic"],
        symbols=SYMBOLS,
        intervals=["1d"],
        datasets=["ohlcv", "market"],
        since=DAILY_START,
        until=UNTIL,
    ) + plan_requests(
        sources=["synthetic"],
        symbols=SYMBOLS,
        intervals=["1h"],
        datasets=["ohlcv"],
        since=HOURLY_START,
        until=UNTIL,
    )
    result = ingest(requests)
    assert not result.failures, result.failures
    run_dbt(
        ["build", "--select", "+daily_crypto_metrics", "--quiet"]
        + ["--target-path", str(tmp_path / "dbt_target"), "--indirect-selection", "cautious"]
    )
    with psycopg.connect(warehouse_url) as conn:
        cursor = conn.execute(
            "select symbol, date, source_interval, is_complete_day, open, high, low, close,"
            " volume, log_return, market_price_deviation_bp"
            " from gold.daily_crypto_metrics order by symbol, date"
        )
        columns = [c.name for c in cursor.description or []]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def test_the_switch_from_daily_to_hourly_days_is_invisible_in_gold(gold: pd.DataFrame) -> None:
    source = SyntheticSource(get_settings(), clock=lambda: UNTIL)
    switch = HOURLY_START.date()
    assert set(gold["symbol"]) == set(SYMBOLS)
    for symbol in SYMBOLS:
        days = gold[gold["symbol"] == symbol].set_index("date")
        assert days.index[0] == DAILY_START.date() and days.index[-1] == date(2025, 5, 31)
        assert days["is_complete_day"].all()
        # the demo's shape really is there: daily candles, then hourly days from the switch
        assert set(days.loc[: date(2025, 5, 19), "source_interval"]) == {"1d"}
        assert set(days.loc[switch:, "source_interval"]) == {"1h"}

        daily = source.fetch_ohlcv(get_settings().token(symbol), "1d", DAILY_START, UNTIL).frame
        daily.index = daily["timestamp"].dt.date
        for column in ("open", "high", "low", "close"):
            np.testing.assert_allclose(
                days[column].astype(float), daily[column], rtol=1e-12, err_msg=symbol
            )
        np.testing.assert_allclose(days["volume"].astype(float), daily["volume"], rtol=1e-9)

        returns = days["log_return"].dropna().astype(float).abs()
        assert returns.loc[switch] < returns.drop(switch).max(), symbol
        # the CoinGecko-style snapshot at the next midnight is the day's close
        deviation = days["market_price_deviation_bp"].dropna().astype(float)
        assert len(deviation) >= len(days) - 1 and (deviation.abs() < 1e-6).all(), symbol
