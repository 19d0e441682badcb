"""Poison and corrections downstream of bronze: a `high < low` candle that reaches bronze past
validation stops silver as a non-positive close does, and deleting or correcting it in bronze
reaches incremental silver (no stale row, no failing test left behind), equal to a full refresh.
"""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest

from crypto_analytics.errors import DataQualityError, TransformError

pytestmark = [pytest.mark.integration, pytest.mark.shared_data, pytest.mark.slow]

POISON_DAY = "2024-05-01"


def _cleaned(url: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select symbol, interval, timestamp, open, high, low, close, log_return, gap_candles,"
            " _last_ingested_at from silver.crypto_prices_cleaned order by 1, 2, 3"
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or []])


def test_poison_stops_silver_and_its_deletion_or_correction_reaches_incremental_silver(
    fresh_database, bronze_loader, dbt_factory
):
    url = fresh_database()
    loader = bronze_loader(url)
    loader.binance_daily(["BTC", "ETH"], start="2024-03-01", end="2024-06-30")
    dbt = dbt_factory(url)
    dbt.build()
    clean = _cleaned(url)

    # A candle with high below low lands in bronze past validation (by hand, or an old loader).
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into bronze.raw_crypto_prices (timestamp, symbol, interval, open, high, low,"
            " close, volume, quote_currency, source_api, _batch_id) values"
            " (%s, 'BTC', '1d', 100, 90, 110, 100, 1, 'USDT', 'binance_archive', gen_random_uuid())"
            " on conflict do nothing",
            ("2024-07-01",),
        )
    with pytest.raises((DataQualityError, TransformError), match="expression_is_true"):
        dbt.build()

    # Deleted from bronze: the next incremental build drops the stale row and passes.
    with psycopg.connect(url) as conn:
        conn.execute("delete from bronze.raw_crypto_prices where high < low")
    dbt.build()
    after_delete = _cleaned(url)
    assert not ((after_delete["high"] < after_delete["low"]).any())
    pd.testing.assert_frame_equal(
        after_delete.drop(columns="_last_ingested_at"), clean.drop(columns="_last_ingested_at")
    )

    # A candle deleted from the middle of a series: gone from silver, its successor recomputed
    # (one gap candle, no return across the gap) and stamped with the deletion's time.
    with psycopg.connect(url) as conn:
        conn.execute(
            "delete from bronze.raw_crypto_prices where symbol = 'ETH' and timestamp = %s",
            (POISON_DAY,),
        )
        # and a correction of another candle's close
        conn.execute(
            "update bronze.raw_crypto_prices set close = close * 1.5, high = high * 1.5"
            " where symbol = 'BTC' and timestamp = '2024-06-10'"
        )
    dbt.build()
    incremental = _cleaned(url)
    eth = incremental[incremental["symbol"] == "ETH"].set_index("timestamp")
    assert pd.Timestamp(POISON_DAY, tz="UTC") not in eth.index
    successor = eth.loc[pd.Timestamp("2024-05-02", tz="UTC")]
    assert successor["gap_candles"] == 1 and pd.isna(successor["log_return"])
    assert successor["_last_ingested_at"] > clean["_last_ingested_at"].max()
    btc = incremental[incremental["symbol"] == "BTC"].set_index("timestamp")
    before = clean[clean["symbol"] == "BTC"].set_index("timestamp")
    day = pd.Timestamp("2024-06-10", tz="UTC")
    assert btc.loc[day, "close"] == pytest.approx(before.loc[day, "close"] * 1.5)

    # ...exactly what a full refresh of the same bronze gives
    dbt("run", "--select", "crypto_prices_cleaned", "--full-refresh")
    pd.testing.assert_frame_equal(incremental, _cleaned(url))
