"""The gold marts the dashboard reads, checked against independent pandas/numpy computations on
the demo warehouse's silver, and on hand-made audit and quarantine rows."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

pytestmark = pytest.mark.integration

SPAN, TOLERANCE_ATR, MIN_TOUCHES, LOOKBACK_DAYS = 5, 0.5, 2, 365


def _frame(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> pd.DataFrame:
    cursor = conn.execute(query, params)
    return pd.DataFrame(cursor.fetchall(), columns=[d.name for d in cursor.description or []])


def _silver(conn: psycopg.Connection, symbol: str, interval: str) -> pd.DataFrame:
    return _frame(
        conn,
        """
        select "timestamp", open, high, low, close, volume from silver.crypto_prices_cleaned
        where symbol = %s and interval = %s order by "timestamp"
        """,
        (symbol, interval),
    )


def test_session_vwap_equals_a_pandas_reference(demo_warehouse: str) -> None:
    with psycopg.connect(demo_warehouse) as conn:
        silver = _silver(conn, "BTC", "1h")
        gold = _frame(
            conn,
            "select \"timestamp\", vwap from gold.price_candles where symbol = 'BTC' and interval = '1h' order by 1",
        )
    day = silver["timestamp"].dt.tz_convert("UTC").dt.date
    price_volume = (silver["high"] + silver["low"] + silver["close"]) / 3 * silver["volume"]
    expected = price_volume.groupby(day).cumsum() / silver["volume"].groupby(day).cumsum()
    assert len(gold) == len(silver) > 24 * 30
    np.testing.assert_allclose(gold["vwap"].to_numpy(float), expected.to_numpy(float), rtol=1e-12)


def test_daily_candles_carry_the_days_vwap(demo_warehouse: str) -> None:
    with psycopg.connect(demo_warehouse) as conn:
        mismatches = conn.execute(
            """
            select count(*) from gold.price_candles as candles
            join gold.daily_crypto_metrics as daily
              on daily.symbol = candles.symbol and daily.date = candles.session_date
            where candles.interval = '1d' and candles.vwap is distinct from daily.vwap
            """
        ).fetchone()
        daily_rows = conn.execute(
            "select count(*) from gold.price_candles where interval = '1d'"
        ).fetchone()
    assert mismatches == (0,) and daily_rows[0] > 38 * 300  # type: ignore[index]


def test_tickers_equal_a_pandas_reference(demo_warehouse: str) -> None:
    """Latest close, change over 24 h, high/low/volume of the last 24 h, per token."""
    with psycopg.connect(demo_warehouse) as conn:
        tickers = _frame(conn, "select * from gold.market_tickers").set_index("symbol")
        assert len(tickers) == 38
        for symbol in ("BTC", "ETH", "PEPE", "USDT"):
            row = tickers.loc[symbol]
            candles = _silver(conn, symbol, row["source_interval"])
            step = pd.Timedelta(row["source_interval"].replace("m", "min"))
            closes_at = candles["timestamp"] + step
            latest = candles.iloc[-1]
            reference = candles[closes_at <= closes_at.iloc[-1] - pd.Timedelta(hours=24)].iloc[-1]
            window = candles[closes_at > closes_at.iloc[-1] - pd.Timedelta(hours=24)]
            assert row["price"] == latest["close"]
            assert row["change_24h"] == pytest.approx(
                latest["close"] / reference["close"] - 1, rel=1e-12
            )
            assert row["change_window_hours"] == 24
            assert row["high_24h"] == window["high"].max() and row["low_24h"] == window["low"].min()
            assert row["volume_24h"] == pytest.approx(window["volume"].sum(), rel=1e-12)
            assert row["candles_24h"] == len(window)


def _reference_levels(candles: pd.DataFrame) -> set[tuple[str, float, int]]:
    """The documented algorithm, written again with numpy (see support_resistance_levels.sql)."""
    window = candles[
        candles["timestamp"] > candles["timestamp"].iloc[-1] - pd.Timedelta(days=LOOKBACK_DAYS)
    ]
    high, low, close = (window[c].to_numpy(float) for c in ("high", "low", "close"))
    previous = np.concatenate([[close[0]], close[:-1]])
    true_range = np.maximum.reduce([high - low, np.abs(high - previous), np.abs(low - previous)])
    tolerance = TOLERANCE_ATR * true_range[-14:].mean()
    swings = []
    for i in range(SPAN, len(window) - SPAN):
        if high[i] > high[i - SPAN : i].max() and high[i] >= high[i + 1 : i + SPAN + 1].max():
            swings.append(high[i])
        if low[i] < low[i - SPAN : i].min() and low[i] <= low[i + 1 : i + SPAN + 1].min():
            swings.append(low[i])
    swings.sort()
    groups: list[list[float]] = []
    for price in swings:
        if groups and price - groups[-1][-1] <= tolerance:
            groups[-1].append(price)
        else:
            groups.append([price])
    return {
        ("support" if np.mean(g) < close[-1] else "resistance", round(float(np.mean(g)), 6), len(g))
        for g in groups
        if len(g) >= MIN_TOUCHES
    }


@pytest.mark.parametrize(("symbol", "interval"), [("BTC", "1d"), ("DOGE", "1d"), ("ETH", "1h")])
def test_support_resistance_equals_a_numpy_reference(
    demo_warehouse: str, symbol: str, interval: str
) -> None:
    with psycopg.connect(demo_warehouse) as conn:
        candles = _silver(conn, symbol, interval)
        if interval == "1h":  # the 1h lookback is 60 days
            candles = candles[
                candles["timestamp"] > candles["timestamp"].iloc[-1] - pd.Timedelta(days=60)
            ]
        levels = _frame(
            conn,
            "select kind, level_price, touches from gold.support_resistance_levels where symbol = %s and interval = %s",
            (symbol, interval),
        )
    found = {(k, round(float(p), 6), int(t)) for k, p, t in levels.itertuples(index=False)}
    assert found == _reference_levels(candles)
    assert found, "the demo's candles must have levels"


def _audit_row(conn: psycopg.Connection, **values: object) -> None:
    row = {
        "batch_id": uuid.uuid4(),
        "source_api": "binance",
        "dataset": "ohlcv",
        "symbols": ["BTC"],
        "interval": "1h",
        "status": "succeeded",
        **values,
    }
    columns = ", ".join(row)
    conn.execute(
        f"insert into bronze.ingestion_audit ({columns}) values ({', '.join(['%s'] * len(row))})",
        tuple(row.values()),
    )


def test_freshness_status_per_feed(built_empty_warehouse: str) -> None:
    """Overdue = age beyond one candle interval; the newest batch failing wins over age."""
    with psycopg.connect(built_empty_warehouse) as conn, conn.transaction(force_rollback=True):
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        hours = lambda h: now - pd.Timedelta(hours=h)  # noqa: E731
        _audit_row(
            conn, source_api="binance", interval="1h", window_end=hours(2), started_at=hours(1)
        )
        _audit_row(
            conn, source_api="yahoo", interval="1h", window_end=hours(9), started_at=hours(8)
        )
        _audit_row(
            conn,
            source_api="coingecko",
            dataset="market",
            interval=None,
            window_end=hours(30),
            started_at=hours(29),
        )
        # a daily feed 20 hours behind is on time: its newest closed candle is up to a day old
        _audit_row(
            conn, source_api="binance", interval="1d", window_end=hours(20), started_at=hours(1)
        )
        _audit_row(
            conn,
            source_api="binance_archive",
            interval="1d",
            window_end=hours(2),
            started_at=hours(3),
        )
        _audit_row(conn, source_api="binance_archive", interval="1d", status="failed", error="HTTP 503", started_at=hours(1))  # fmt: skip
        status = dict(
            conn.execute(
                "select source_api || ' ' || coalesce(interval, '-'), freshness_status from gold.source_freshness"
            ).fetchall()
        )
        archive = conn.execute(
            "select last_error, failed_batches_24h, batches_24h from gold.source_freshness where source_api = 'binance_archive'"
        ).fetchone()
    assert status == {
        "binance 1h": "fresh",
        "yahoo 1h": "late",
        "coingecko -": "stale",
        "binance 1d": "fresh",
        "binance_archive 1d": "failing",
    }
    assert archive == ("HTTP 503", 1, 2)


def test_quarantine_reasons_are_grouped_by_kind(built_empty_warehouse: str) -> None:
    with psycopg.connect(built_empty_warehouse) as conn, conn.transaction(force_rollback=True):
        batch = uuid.uuid4()
        for number, (symbol, reason) in enumerate(
            (
                ("BTC", "close -1.0 is not positive"),
                ("ETH", "close -3.5 is not positive"),
                ("ETH", "timestamp 2031-01-01T00:00:00+00:00 is in the future"),
                ("SOL", "open 'abc' is not a number"),
            )
        ):
            conn.execute(
                """
                insert into bronze.quarantine (_batch_id, source_api, dataset, symbol, reason, row_data)
                values (%s, 'binance', 'ohlcv', %s, %s, %s)
                """,
                (batch, symbol, reason, f'{{"row": {number}}}'),
            )
        kinds = _frame(
            conn,
            "select reason_kind, quarantined_rows, symbols from gold.quarantine_reasons order by reason_kind",
        )
    assert kinds.to_dict("records") == [
        {"reason_kind": "close # is not positive", "quarantined_rows": 2, "symbols": "BTC,ETH"},
        {"reason_kind": "open # is not a number", "quarantined_rows": 1, "symbols": "SOL"},
        {"reason_kind": "timestamp # is in the future", "quarantined_rows": 1, "symbols": "ETH"},
    ]


def test_dbt_test_results_keep_the_latest_outcome_and_prune_old_history(
    built_empty_warehouse: str, tmp_path: Path
) -> None:
    """A failing test is recorded as failed with its failure count; rows older than the
    retention are deleted by the same hook."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTO_", "DBT_"))}
    env.update(
        CRYPTO_DATABASE_URL=built_empty_warehouse,
        CRYPTO_DATA_DIR=str(tmp_path / "data"),
        DBT_TARGET_PATH=str(tmp_path / "target"),
        DBT_LOG_PATH=str(tmp_path / "logs"),
    )
    with psycopg.connect(built_empty_warehouse, autocommit=True) as conn:
        conn.execute(
            """
            insert into public.dbt_test_results
                (invocation_id, run_started_at, unique_id, resource_type, test_type, status)
            values ('ancient', now() - interval '45 days', 'test.crypto_analytics.gone.1', 'test', 'unique', 'pass')
            """
        )
        conn.execute("insert into gold.market_tickers (symbol) values ('BTC')")  # a duplicate
        try:
            done = subprocess.run(
                [sys.executable, "-m", "crypto_analytics.cli", "dbt", "test", "--select", "unique_market_tickers_symbol"],
                env=env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        finally:
            conn.execute("delete from gold.market_tickers where symbol = 'BTC' and name is null")
        assert done.returncode != 0, done.stdout  # the test failed, and dbt said so
        assert "unique_market_tickers_symbol" in done.stdout + done.stderr, (
            done.stdout + done.stderr
        )
        result = conn.execute(
            "select status, failures, test_type, tested_node, column_name from gold.dbt_test_results where test_name = 'unique_market_tickers_symbol'"
        ).fetchone()
        ancient = conn.execute(
            "select count(*) from public.dbt_test_results where invocation_id = 'ancient'"
        ).fetchone()
    assert result == ("fail", 1, "unique", "market_tickers", "symbol")
    assert ancient == (0,)
