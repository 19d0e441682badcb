"""The audit trail: running rows are visible at once, stale ones expire, skips say why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from crypto_analytics.errors import LoadError
from crypto_analytics.ingestion import audit
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration

WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))


@pytest.fixture
def conn(warehouse_url: str):
    with connect(warehouse_url, autocommit=True) as connection:
        yield connection


def start(conn, batch_id, **overrides):
    arguments = {
        "batch_id": batch_id,
        "source_api": "binance",
        "dataset": "ohlcv",
        "symbols": ["ETH", "BTC", "ETH"],
        "interval": "1h",
        "window_start": WINDOW[0],
        "window_end": WINDOW[1],
        "lake_paths": ["manifests/date=2024-01-02/x.json"],
    }
    audit.start_batch(conn, **(arguments | overrides))


def test_running_row_is_committed_before_the_batch_does_anything(conn, warehouse_url):
    batch_id = uuid.uuid4()
    start(conn, batch_id)

    with psycopg.connect(warehouse_url) as other:  # another session sees it: it is committed
        row = other.execute(
            "select status, source_api, dataset, symbols, interval, window_start, window_end, "
            "lake_paths, finished_at from bronze.ingestion_audit where batch_id = %s",
            (batch_id,),
        ).fetchone()
    assert row == (
        "running",
        "binance",
        "ohlcv",
        ["BTC", "ETH"],
        "1h",
        *WINDOW,
        ["manifests/date=2024-01-02/x.json"],
        None,
    )


def test_finish_commits_with_the_batch_transaction_only(conn):
    batch_id = uuid.uuid4()
    start(conn, batch_id)

    with pytest.raises(RuntimeError), conn.transaction():
        audit.finish_batch(
            conn,
            batch_id,
            status="succeeded",
            rows_fetched=5,
            rows_inserted=5,
            rows_duplicate=0,
            rows_quarantined=0,
        )
        raise RuntimeError("the batch failed after the audit update")
    assert audit.get_batch(conn, batch_id)["status"] == "running"

    with conn.transaction():
        audit.finish_batch(
            conn,
            batch_id,
            status="partial",
            rows_fetched=7,
            rows_inserted=4,
            rows_duplicate=1,
            rows_quarantined=2,
        )
    row = audit.get_batch(conn, batch_id)
    assert (row["status"], row["rows_fetched"], row["rows_inserted"]) == ("partial", 7, 4)
    assert (row["rows_duplicate"], row["rows_quarantined"]) == (1, 2)
    assert row["finished_at"] >= row["started_at"]


def test_finish_without_start_is_an_error(conn):
    with pytest.raises(LoadError, match="no audit row"), conn.transaction():
        audit.finish_batch(
            conn,
            uuid.uuid4(),
            status="succeeded",
            rows_fetched=0,
            rows_inserted=0,
            rows_duplicate=0,
            rows_quarantined=0,
        )


def test_mark_failed_keeps_the_error(conn):
    batch_id = uuid.uuid4()
    start(conn, batch_id)
    audit.mark_failed(conn, batch_id, "SourceUnavailable: binance: HTTP 503")
    row = audit.get_batch(conn, batch_id)
    assert (row["status"], row["error"]) == ("failed", "SourceUnavailable: binance: HTTP 503")
    assert row["finished_at"] is not None


def test_restarting_a_batch_resets_it_and_keeps_what_was_known(conn):
    batch_id = uuid.uuid4()
    start(conn, batch_id)
    audit.mark_failed(conn, batch_id, "boom")

    # the load step of a replay knows less than the fetch step did
    audit.start_batch(conn, batch_id=batch_id, source_api="binance", dataset="ohlcv")

    row = audit.get_batch(conn, batch_id)
    assert (row["status"], row["error"], row["finished_at"]) == ("running", None, None)
    assert (row["symbols"], row["interval"]) == (["BTC", "ETH"], "1h")
    assert (row["window_start"], row["window_end"]) == WINDOW
    assert row["lake_paths"] == ["manifests/date=2024-01-02/x.json"]


def test_skipped_batch_records_the_reason(conn):
    batch_id = uuid.uuid4()
    audit.record_skipped(
        conn,
        batch_id=batch_id,
        source_api="yahoo",
        dataset="orderbook",
        reason="yahoo: does not serve order books",
        symbols=["BTC"],
    )
    row = audit.get_batch(conn, batch_id)
    assert (row["status"], row["error"], row["symbols"]) == (
        "skipped",
        "yahoo: does not serve order books",
        ["BTC"],
    )
    assert row["finished_at"] is not None


def test_expire_stale_running_fails_only_old_running_rows(conn):
    old, fresh, done = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for batch_id in (old, fresh, done):
        start(conn, batch_id)
    audit.mark_failed(conn, done, "already finished")
    conn.execute(
        "update bronze.ingestion_audit set started_at = now() - interval '3 hours' "
        "where batch_id in (%s, %s)",
        (old, done),
    )

    assert audit.expire_stale_running(conn, timedelta(hours=2)) == [old]

    row = audit.get_batch(conn, old)
    assert row["status"] == "failed"
    assert row["error"] == (
        "abandoned: still running after 02:00:00 (the loading process died without reporting)"
    )
    assert audit.get_batch(conn, fresh)["status"] == "running"
    assert audit.get_batch(conn, done)["error"] == "already finished"
    assert audit.expire_stale_running(conn, timedelta(hours=2)) == []
    with pytest.raises(ValueError, match="must not be negative"):
        audit.expire_stale_running(conn, timedelta(hours=-1))


def test_writes_that_must_commit_refuse_an_open_transaction(warehouse_url):
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("select 1")
        with pytest.raises(LoadError, match="outside any transaction"):
            start(conn, uuid.uuid4())
        with pytest.raises(LoadError, match="outside any transaction"):
            audit.expire_stale_running(conn, timedelta(hours=1))


def test_unknown_batch_reads_as_none(conn):
    assert audit.get_batch(conn, uuid.uuid4()) is None
