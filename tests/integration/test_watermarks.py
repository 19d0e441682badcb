"""Watermarks only move forward, per series, and only with their transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from crypto_analytics.ingestion import watermarks
from crypto_analytics.ingestion.frames import Dataset, conform
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, tzinfo=UTC)
T1 = datetime(2024, 3, 2, tzinfo=UTC)
T2 = datetime(2024, 3, 3, tzinfo=UTC)


@pytest.fixture
def conn(warehouse_url: str):
    with connect(warehouse_url, autocommit=True) as connection:
        yield connection


def advance(conn, latest, dataset="ohlcv"):
    with conn.transaction():
        return watermarks.advance(conn, "binance", dataset, latest)


def updated_at(conn, symbol):
    return conn.execute(
        "select updated_at from bronze.watermarks where symbol = %s", (symbol,)
    ).fetchone()[0]


def test_nothing_landed_reads_as_none(conn):
    assert watermarks.get_watermark(conn, "binance", "ohlcv", "BTC", "1h") is None
    assert watermarks.get_watermarks(conn, "binance", "ohlcv") == {}


def test_advance_moves_forward_never_back(conn):
    assert advance(conn, {("BTC", "1h"): T1, ("BTC", "1d"): T0}) == 2
    stamp = updated_at(conn, "BTC")

    assert advance(conn, {("BTC", "1h"): T0}) == 0  # an older batch replayed
    assert watermarks.get_watermark(conn, "binance", "ohlcv", "BTC", "1h") == T1
    assert advance(conn, {("BTC", "1h"): T1}) == 0  # the same batch again
    assert conn.execute(
        "select count(*) from bronze.watermarks where updated_at <> %s", (stamp,)
    ).fetchone() == (0,)

    assert advance(conn, {("BTC", "1h"): T2, ("ETH", "1h"): T0}) == 2
    assert watermarks.get_watermarks(conn, "binance", "ohlcv") == {
        ("BTC", "1h"): T2,
        ("BTC", "1d"): T0,
        ("ETH", "1h"): T0,
    }
    assert watermarks.get_watermarks(conn, "coingecko", "ohlcv") == {}


def test_advance_rolls_back_with_its_transaction(conn):
    with pytest.raises(RuntimeError), conn.transaction():
        watermarks.advance(conn, "binance", "ohlcv", {("BTC", "1h"): T1})
        raise RuntimeError("batch failed")
    assert watermarks.get_watermark(conn, "binance", "ohlcv", "BTC", "1h") is None


def test_datasets_without_candles_use_an_empty_interval(conn):
    advance(conn, {("BTC", ""): T1}, dataset="market")
    assert watermarks.get_watermark(conn, "binance", "market", "BTC") == T1
    assert watermarks.get_watermark(conn, "binance", "market", "BTC", None) == T1
    assert watermarks.get_watermark(conn, "binance", "ohlcv", "BTC", "") is None


def test_latest_timestamps_per_series():
    frame = conform(
        pd.DataFrame(
            {
                "timestamp": [T0, T2, T1, T1],
                "symbol": ["BTC", "BTC", "ETH", "BTC"],
                "interval": ["1h", "1h", "1h", "1d"],
                "open": 1.0,
                "high": 1.0,
                "low": 1.0,
                "close": 1.0,
                "volume": 1.0,
                "quote_volume": 1.0,
                "quote_currency": "USD",
                "source_api": "binance",
            }
        ),
        Dataset.OHLCV,
    )
    assert watermarks.latest_timestamps(frame, Dataset.OHLCV) == {
        ("BTC", "1h"): T2,
        ("ETH", "1h"): T1,
        ("BTC", "1d"): T1,
    }
    market = frame.drop(columns=["interval"])
    assert watermarks.latest_timestamps(market, "market") == {("BTC", ""): T2, ("ETH", ""): T1}
    assert watermarks.latest_timestamps(frame.iloc[:0], Dataset.OHLCV) == {}
