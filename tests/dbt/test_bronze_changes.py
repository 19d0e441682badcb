"""Poison and corrections downstream of bronze: a `high < low` candle that reaches bronze past
validation stops silver as a non-positive close does, and deleting or correcting it in bronze
reaches every incremental silver table (no stale row, no failing test left behind, indicators and
running figures continued from the candle before the change), equal to a full refresh. Gold's
incremental tables are held to the same in tests/dbt/test_incremental_equivalence.py.
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


SILVER_TABLES = ("crypto_prices_cleaned", "technical_indicators", "returns_and_risk")


def _silver(url: str) -> dict[str, pd.DataFrame]:
    """Every incremental silver table, in key order, without `_built_at` (when, not what)."""
    tables = {}
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for table in SILVER_TABLES:
            cur.execute(f"select * from silver.{table} order by symbol, interval, timestamp")
            columns = [d.name for d in cur.description or []]
            frame = pd.DataFrame(cur.fetchall(), columns=columns)
            tables[table] = frame.drop(columns="_built_at")
    return tables


def _assert_silver_equals_full_refresh(url: str, dbt) -> None:
    """Rebuild the incremental silver tables with --full-refresh: every row and value the same
    (floats to 1e-12 relative; in practice bit for bit)."""
    incremental = _silver(url)
    dbt("run", "--select", *SILVER_TABLES, "--full-refresh")
    for table, full in _silver(url).items():
        pd.testing.assert_frame_equal(
            incremental[table], full, check_exact=False, rtol=1e-12, atol=0, obj=table
        )


def _candles(url: str, table: str, symbol: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select * from silver.{table} where symbol = %s and interval = '1d' order by timestamp",
            (symbol,),
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or []])
    return frame.set_index("timestamp")


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

    # The deleted candle left every silver table; its successor continues from the candle
    # before it (candle count, EMA state), not from the deleted one.
    gone = pd.Timestamp(POISON_DAY, tz="UTC")
    indicators = _candles(url, "technical_indicators", "ETH")
    risk = _candles(url, "returns_and_risk", "ETH")
    assert gone not in indicators.index and gone not in risk.index
    before_gone = pd.Timestamp(POISON_DAY, tz="UTC") - pd.Timedelta(days=1)
    assert indicators.loc[successor.name, "candle_number"] == (
        indicators.loc[before_gone, "candle_number"] + 1
    )
    assert pd.isna(risk.loc[successor.name, "log_return"])

    # ...exactly what a full refresh of the same bronze gives
    _assert_silver_equals_full_refresh(url, dbt)


def test_deleted_first_and_last_candles_and_a_corrected_first_close_reach_every_silver_table(
    fresh_database, bronze_loader, dbt_factory
):
    """The edges of a series: a deleted first candle moves the base of the cumulative return and
    the candle count, a deleted newest candle has no successor to carry the change, and a
    corrected first close changes every cumulative return after it."""
    url = fresh_database()
    bronze_loader(url).binance_daily(["BTC", "ETH", "LINK"], start="2024-01-01", end="2024-09-30")
    dbt = dbt_factory(url)
    dbt.build()
    first, second = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02", tz="UTC")
    newest = pd.Timestamp("2024-09-30", tz="UTC")
    with psycopg.connect(url) as conn:
        conn.execute(
            "delete from bronze.raw_crypto_prices where (symbol = 'ETH' and timestamp = %s)"
            " or (symbol = 'BTC' and timestamp = %s)",
            (first, newest),
        )
        conn.execute(
            "update bronze.raw_crypto_prices set close = close * 0.9, low = least(low, close * 0.9)"
            " where symbol = 'LINK' and timestamp = %s",
            (first,),
        )
    dbt.build()

    eth = _candles(url, "technical_indicators", "ETH")
    assert eth.index[0] == second and eth["candle_number"].iloc[0] == 1
    eth_risk = _candles(url, "returns_and_risk", "ETH")
    assert eth_risk.index[0] == second and eth_risk["cumulative_return"].iloc[0] == 0
    for table in SILVER_TABLES:
        assert newest not in _candles(url, table, "BTC").index, table
    link = _candles(url, "crypto_prices_cleaned", "LINK")
    link_risk = _candles(url, "returns_and_risk", "LINK")
    assert link_risk.loc[newest, "cumulative_return"] == pytest.approx(
        link.loc[newest, "close"] / link.loc[first, "close"] - 1, rel=1e-12
    )

    _assert_silver_equals_full_refresh(url, dbt)
