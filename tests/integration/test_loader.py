"""The bronze loader on a real PostgreSQL: idempotent reloads, lineage, quarantine, rollbacks.

Frames are built from real Binance and CoinGecko payloads in shared/data, so the values asserted
are the ones the exchange sent, not values derived by the code under test.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from crypto_analytics.errors import LoadError
from crypto_analytics.ingestion import loader, watermarks
from crypto_analytics.ingestion.frames import Dataset, conform
from crypto_analytics.ingestion.loader import copy_into_bronze, load_batch
from crypto_analytics.ingestion.reports import BatchReport
from crypto_analytics.ingestion.sources.binance_format import parse_klines
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration

KLINES = "api_samples/binance/nautilus_trader/http_spot_market_klines.json"
DEPTH = "api_samples/binance/nautilus_trader/http_spot_market_depth.json"
MARKETS = "api_samples/coingecko/RozanovIgor_monkey/coins_markets.json"
MANIFEST = "manifests/date=2021-10-22/batch.json"

FIRST_OPEN = datetime(2021, 10, 22, 23, 3, tzinfo=UTC)
LAST_OPEN = datetime(2021, 10, 22, 23, 12, tzinfo=UTC)


def binance_candles(shared_data: Path) -> pd.DataFrame:
    """The 10 BTCUSDT 1m klines of the sample, parsed the way the exchange source does."""
    rows = json.loads((shared_data / KLINES).read_text())
    return parse_klines(
        rows, symbol="BTC", interval="1m", quote_currency="USDT", source_api="binance"
    )


def rejected_candles(shared_data: Path) -> pd.DataFrame:
    """Two broken candles as validation would hand them over: the row plus a reason."""
    bad = binance_candles(shared_data).iloc[:2].copy()
    bad["timestamp"] = bad["timestamp"] + pd.Timedelta(minutes=30)
    bad.loc[bad.index[0], "high"] = 9.0
    bad.loc[bad.index[1], "quote_volume"] = np.nan
    bad["reason"] = ["high 9.0 below close 60719.27", "timestamp in the future"]
    return bad


@pytest.fixture
def conn(warehouse_url: str):
    with connect(warehouse_url, autocommit=True) as connection:
        yield connection


def load(conn, frame, batch_id=None, rejected=None, dataset=Dataset.OHLCV, source="binance"):
    return load_batch(
        conn,
        batch_id=batch_id or uuid.uuid4(),
        source_api=source,
        dataset=dataset,
        interval="1m" if dataset is Dataset.OHLCV else None,
        valid=frame,
        rejected=rejected,
        raw_payload_path=MANIFEST,
    )


def audit_row(conn, batch_id):
    return conn.execute(
        "select status, rows_fetched, rows_inserted, rows_duplicate, rows_quarantined, error "
        "from bronze.ingestion_audit where batch_id = %s",
        (batch_id,),
    ).fetchone()


def count(conn, table="bronze.raw_crypto_prices"):
    return conn.execute(f"select count(*) from {table}").fetchone()[0]


def test_same_batch_three_times_lands_once(conn, shared_data):
    frame = binance_candles(shared_data)
    batch_id = uuid.uuid4()

    first = load(conn, frame, batch_id)
    wm_updated = conn.execute("select updated_at from bronze.watermarks").fetchone()[0]
    second = load(conn, frame, batch_id)
    third = load(conn, frame, batch_id)

    assert (first.rows_fetched, first.rows_inserted, first.rows_duplicate) == (10, 10, 0)
    assert first.status == "succeeded"
    for again in (second, third):
        assert (again.rows_fetched, again.rows_inserted, again.rows_duplicate) == (10, 0, 10)
        assert again.status == "succeeded"
        # a reload is audited on a row of its own, pointing at the original
        assert again.replay_of == batch_id and again.batch_id != batch_id
        assert audit_row(conn, again.batch_id) == ("succeeded", 10, 0, 10, 0, None)
    assert count(conn) == 10
    # the original's counts stay true, and summed over the audit they equal what bronze holds
    assert audit_row(conn, batch_id) == ("succeeded", 10, 10, 0, 0, None)
    (inserted,) = conn.execute("select sum(rows_inserted) from bronze.ingestion_audit").fetchone()
    assert inserted == count(conn)
    assert watermarks.get_watermark(conn, "binance", "ohlcv", "BTC", "1m") == LAST_OPEN
    assert conn.execute("select updated_at from bronze.watermarks").fetchone()[0] == wm_updated

    # values exactly as Binance sent them; lineage: this batch, one _ingested_at for the batch
    first_row = conn.execute(
        "select open, high, low, close, volume, quote_volume, _batch_id from bronze.raw_crypto_prices "
        'where "timestamp" = %s',
        (FIRST_OPEN,),
    ).fetchone()
    assert first_row == (60685.22, 60729.84, 60670.9, 60719.27, 21.63272, 1313200.0134041, batch_id)
    assert conn.execute(
        "select count(distinct _ingested_at) from bronze.raw_crypto_prices"
    ).fetchone() == (1,)


def test_overlapping_batch_inserts_only_the_new_rows_and_keeps_first_lineage(conn, shared_data):
    frame = binance_candles(shared_data)
    first_id, second_id = uuid.uuid4(), uuid.uuid4()

    load(conn, frame.iloc[:7], first_id)
    assert watermarks.get_watermark(conn, "binance", "ohlcv", "BTC", "1m") == datetime(
        2021, 10, 22, 23, 9, tzinfo=UTC
    )
    report = load(conn, frame.iloc[4:], second_id)

    assert (report.rows_fetched, report.rows_inserted, report.rows_duplicate) == (6, 3, 3)
    owners = dict(
        conn.execute(
            "select _batch_id, count(*) from bronze.raw_crypto_prices group by _batch_id"
        ).fetchall()
    )
    assert owners == {first_id: 7, second_id: 3}
    assert watermarks.get_watermark(conn, "binance", "ohlcv", "BTC", "1m") == LAST_OPEN


def test_new_rows_copy_directly_and_overlaps_go_through_staging(conn, shared_data):
    frame = binance_candles(shared_data)
    with conn.transaction():
        fresh = copy_into_bronze(conn, Dataset.OHLCV, frame.iloc[:5], uuid.uuid4())
    with conn.transaction():
        overlapping = copy_into_bronze(conn, Dataset.OHLCV, frame, uuid.uuid4())
    with conn.transaction():
        later = copy_into_bronze(conn, Dataset.OHLCV, frame.iloc[:0], uuid.uuid4())

    assert fresh == loader.LoadCounts(staged=5, inserted=5, duplicate=0, path="direct")
    assert overlapping == loader.LoadCounts(staged=10, inserted=5, duplicate=5, path="staged")
    assert later == loader.LoadCounts(0, 0, 0, "empty")
    assert count(conn) == 10


def test_direct_copy_falls_back_to_staging_when_a_key_exists(conn, shared_data, monkeypatch):
    """What a concurrent loader landing the same keys looks like: the probe said 'no overlap'
    but COPY meets the primary key; the savepoint rolls the COPY back and staging takes over."""
    frame = binance_candles(shared_data)
    load(conn, frame.iloc[:3])
    monkeypatch.setattr(loader, "_series_overlap", lambda *args: False)

    with conn.transaction():
        counts = copy_into_bronze(conn, Dataset.OHLCV, frame, uuid.uuid4())

    assert counts == loader.LoadCounts(staged=10, inserted=7, duplicate=3, path="staged")
    assert count(conn) == 10


def test_a_key_repeated_inside_the_frame_counts_as_duplicate(conn, shared_data):
    frame = binance_candles(shared_data)
    doubled = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)

    report = load(conn, doubled)

    assert (report.rows_inserted, report.rows_duplicate) == (10, 1)
    assert count(conn) == 10


def test_nan_quote_volume_lands_as_null(conn, shared_data):
    frame = binance_candles(shared_data)
    frame.loc[3, "quote_volume"] = np.nan

    load(conn, frame)

    nulls = conn.execute(
        'select "timestamp" from bronze.raw_crypto_prices where quote_volume is null'
    ).fetchall()
    assert nulls == [(datetime(2021, 10, 22, 23, 6, tzinfo=UTC),)]


def test_quarantined_rows_carry_reason_row_and_payload_pointer(conn, shared_data):
    batch_id = uuid.uuid4()
    report = load(conn, binance_candles(shared_data), batch_id, rejected_candles(shared_data))

    assert (report.rows_fetched, report.rows_inserted, report.rows_quarantined) == (12, 10, 2)
    assert report.status == "partial"
    assert audit_row(conn, batch_id) == ("partial", 12, 10, 0, 2, None)
    rows = conn.execute(
        "select _batch_id, source_api, dataset, symbol, reason, row_data, raw_payload_path "
        "from bronze.quarantine order by quarantine_id"
    ).fetchall()
    assert [r[4] for r in rows] == ["high 9.0 below close 60719.27", "timestamp in the future"]
    assert {(r[0], r[1], r[2], r[3], r[6]) for r in rows} == {
        (batch_id, "binance", "ohlcv", "BTC", MANIFEST)
    }
    first, second = rows[0][5], rows[1][5]
    assert first["timestamp"] == "2021-10-22T23:33:00.000000Z"
    assert (first["high"], first["open"], first["symbol"]) == (9.0, 60685.22, "BTC")
    assert "reason" not in first
    assert second["quote_volume"] is None  # NaN became JSON null
    assert second["close"] == 60771.81


def test_orderbook_json_round_trips_as_jsonb(conn, shared_data):
    depth = json.loads((shared_data / DEPTH).read_text())
    bids = [[float(p), float(q)] for p, q in depth["bids"]]
    asks = [[float(p), float(q)] for p, q in depth["asks"]]
    taken = datetime(2021, 10, 22, 23, 13, tzinfo=UTC)
    frame = conform(
        pd.DataFrame(
            {
                "timestamp": [taken, taken],
                "symbol": ["BTC", "ETH"],
                # a list as a source builds it, and numpy arrays as Parquet hands them back
                "bids": [bids, np.array([np.array(level) for level in bids], dtype=object)],
                "asks": [asks, json.dumps(asks)],
                "depth": [10, 10],
                "best_bid": [bids[0][0]] * 2,
                "best_ask": [asks[0][0]] * 2,
                "spread": [asks[0][0] - bids[0][0]] * 2,
                "mid": [(asks[0][0] + bids[0][0]) / 2] * 2,
                "quote_currency": "USDT",
                "source_api": "binance",
            }
        ),
        Dataset.ORDERBOOK,
    )

    report = load(conn, frame, dataset=Dataset.ORDERBOOK)

    assert report.rows_inserted == 2
    stored = conn.execute(
        "select symbol, bids, asks, depth, best_bid, best_ask, jsonb_array_length(bids) "
        "from bronze.raw_orderbook order by symbol"
    ).fetchall()
    for symbol, got_bids, got_asks, got_depth, best_bid, best_ask, levels in stored:
        assert (got_bids, got_asks) == (bids, asks), symbol
        assert (got_depth, best_bid, best_ask, levels) == (10, 60650.0, 60650.01, 10)
    assert bids[-1] == [60639.93, 0.07282]
    assert watermarks.get_watermarks(conn, "binance", "orderbook") == {
        ("BTC", ""): taken,
        ("ETH", ""): taken,
    }


def test_market_snapshot_loads_with_empty_interval_watermark(conn, shared_data):
    coins = json.loads((shared_data / MARKETS).read_text())[:3]
    frame = conform(
        pd.DataFrame(
            {
                "timestamp": pd.to_datetime([c["last_updated"] for c in coins], utc=True),
                "symbol": [c["symbol"].upper() for c in coins],
                "price": [c["current_price"] for c in coins],
                "market_cap": [c["market_cap"] for c in coins],
                "circulating_supply": [c["circulating_supply"] for c in coins],
                "total_volume": [c["total_volume"] for c in coins],
                "quote_currency": "USD",
                "source_api": "coingecko",
            }
        ),
        Dataset.MARKET,
    )

    report = load(conn, frame, dataset=Dataset.MARKET, source="coingecko")

    assert (report.rows_inserted, report.interval) == (3, None)
    assert conn.execute(
        "select price, market_cap, circulating_supply, total_volume from bronze.raw_market_data "
        "where symbol = 'ETH'"
    ).fetchone() == (2004.13, 244214437500.0, 120590104.1967597, 35043785861.0)
    assert watermarks.get_watermark(conn, "coingecko", "market", "BTC") == datetime(
        2025, 3, 4, 14, 45, 50, 155000, tzinfo=UTC
    )


def test_fault_after_copy_rolls_back_the_whole_batch(conn, shared_data, monkeypatch):
    frame = binance_candles(shared_data)
    batch_id = uuid.uuid4()

    def broken_advance(*args, **kwargs):
        assert count(conn) == 10  # the COPY did land, inside the open transaction
        raise RuntimeError("injected watermark failure")

    monkeypatch.setattr(watermarks, "advance", broken_advance)
    with pytest.raises(LoadError, match="injected watermark failure") as raised:
        load(conn, frame, batch_id, rejected_candles(shared_data))
    assert isinstance(raised.value.__cause__, RuntimeError)

    assert count(conn) == 0
    assert count(conn, "bronze.quarantine") == 0
    assert count(conn, "bronze.watermarks") == 0
    status, *_, error = audit_row(conn, batch_id)
    assert status == "failed"
    assert error == "RuntimeError: injected watermark failure"

    monkeypatch.undo()
    rerun = load(conn, frame, batch_id, rejected_candles(shared_data))
    assert (rerun.rows_inserted, rerun.rows_duplicate, rerun.rows_quarantined) == (10, 0, 2)
    assert audit_row(conn, batch_id) == ("partial", 12, 10, 0, 2, None)


def test_a_database_error_fails_the_batch_with_the_server_message(conn, shared_data):
    frame = binance_candles(shared_data)
    frame.loc[0, "open"] = np.nan  # validation would have caught it; NOT NULL catches it here
    batch_id = uuid.uuid4()

    with pytest.raises(LoadError, match="open"):
        load(conn, frame, batch_id)

    assert count(conn) == 0
    status, *_, error = audit_row(conn, batch_id)
    assert status == "failed" and error.startswith("NotNullViolation")


def test_frames_of_another_source_or_interval_are_refused(conn, shared_data):
    frame = binance_candles(shared_data)
    with pytest.raises(LoadError, match=r"source_api \['binance'\], batch is 'kraken'"):
        load(conn, frame, source="kraken")
    other = frame.assign(interval="1h")
    with pytest.raises(LoadError, match=r"interval \['1h'\], batch is '1m'"):
        load(conn, other)
    assert count(conn) == 0
    statuses = conn.execute("select status from bronze.ingestion_audit").fetchall()
    assert statuses == [("failed",), ("failed",)]


def test_load_batch_refuses_a_connection_inside_a_transaction(warehouse_url, shared_data):
    with psycopg.connect(warehouse_url) as conn:  # not autocommit
        conn.execute("select 1")  # opens an implicit transaction
        with pytest.raises(LoadError, match="outside any transaction"):
            load(conn, binance_candles(shared_data))


def test_copy_into_bronze_refuses_to_run_outside_a_transaction(conn, shared_data):
    with pytest.raises(LoadError, match="inside the caller's transaction"):
        copy_into_bronze(conn, Dataset.OHLCV, binance_candles(shared_data), uuid.uuid4())


def test_report_is_json_safe(conn, shared_data):
    batch_id = uuid.uuid4()
    report = load(conn, binance_candles(shared_data), batch_id)
    assert json.loads(json.dumps(report.to_dict())) == {
        "batch_id": str(batch_id),
        "source_api": "binance",
        "dataset": "ohlcv",
        "interval": "1m",
        "rows_fetched": 10,
        "rows_inserted": 10,
        "rows_duplicate": 0,
        "rows_quarantined": 0,
        "status": "succeeded",
        "load_path": "direct",
        "symbols": ["BTC"],
        "replay_of": None,
        "fetch_failures": [],
    }
    assert BatchReport.model_validate(json.loads(json.dumps(report.to_json()))) == report


def test_a_default_non_autocommit_connection_commits_the_batch(warehouse_url, shared_data):
    with connect(warehouse_url) as conn:  # what warehouse.connect() hands out by default
        report = load(conn, binance_candles(shared_data))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(warehouse_url) as other:
        assert count(other) == 10
        assert other.execute("select status from bronze.ingestion_audit").fetchall() == [
            (report.status,)
        ]
