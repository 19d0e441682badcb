"""A load killed with SIGKILL in the middle leaves no trace of its batch but a 'running' audit row.

The load runs in a child process on 200,000 candles and is killed at a point the test controls,
not at a guessed moment: (1) halfway through the COPY stream (a hook pauses the encoder after
the first half), (2) while its `insert … on conflict` waits on a lock this test holds. Then
nothing of the batch may be in bronze or quarantine, the watermark must not have moved, and a
rerun must land exactly the missing rows.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crypto_analytics.ingestion import audit, watermarks
from crypto_analytics.ingestion.frames import Dataset, conform
from crypto_analytics.ingestion.loader import load_batch
from crypto_analytics.warehouse import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a child process, 200k rows: ~7 s each

APP = "loader-kill-test"
ROWS_PER_SYMBOL = 100_000
START = datetime(2012, 1, 1, tzinfo=UTC)

CHILD = textwrap.dedent(
    """
    import sys, time, uuid
    import pandas as pd
    from crypto_analytics.ingestion import loader
    from crypto_analytics.warehouse import connect

    url, batch_id, valid_path, rejected_path, mode, app = sys.argv[1:7]
    valid = pd.read_parquet(valid_path)
    rejected = pd.read_parquet(rejected_path)
    if mode == "pause-mid-copy":
        real_encode = loader.encode_frame

        def paused_encode(*args, **kwargs):
            for number, chunk in enumerate(real_encode(*args, **kwargs)):
                yield chunk
                if number == 1:  # header + the first 100,000 rows are on the wire
                    print("PAUSED", flush=True)
                    time.sleep(600)

        loader.encode_frame = paused_encode
    with connect(url, autocommit=True, application_name=app) as conn:
        print("LOADING", flush=True)
        loader.load_batch(
            conn, batch_id=uuid.UUID(batch_id), source_api="synthetic", dataset="ohlcv",
            interval="1h", valid=valid, rejected=rejected, raw_payload_path="manifests/kill.json",
        )
    print("DONE", flush=True)
    """
)


def hourly_candles(symbols: list[str], start: datetime, rows_per_symbol: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    parts = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows_per_symbol)))
        open_ = np.concatenate([[100.0], close[:-1]])
        volume = rng.lognormal(5, 1, rows_per_symbol)
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": pd.date_range(start, periods=rows_per_symbol, freq="h"),
                    "symbol": symbol,
                    "interval": "1h",
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.001,
                    "low": np.minimum(open_, close) * 0.999,
                    "close": close,
                    "volume": volume,
                    "quote_volume": volume * close,
                    "quote_currency": "USD",
                    "source_api": "synthetic",
                }
            )
        )
    return conform(pd.concat(parts, ignore_index=True), Dataset.OHLCV)


def rejected_rows(frame: pd.DataFrame) -> pd.DataFrame:
    bad = frame.iloc[:2].copy()
    bad["timestamp"] = bad["timestamp"] - pd.Timedelta(minutes=30)
    bad["reason"] = "timestamp not aligned to 1h"
    return bad


def load(conn, frame, batch_id, rejected=None):
    return load_batch(
        conn,
        batch_id=batch_id,
        source_api="synthetic",
        dataset=Dataset.OHLCV,
        interval="1h",
        valid=frame,
        rejected=rejected,
        raw_payload_path="manifests/kill.json",
    )


class Child:
    """The loading process, with its stdout lines readable with a timeout."""

    def __init__(self, tmp_path: Path, url: str, batch_id: uuid.UUID, frame, rejected, mode):
        script = tmp_path / "child_load.py"
        script.write_text(CHILD)
        frame.to_parquet(tmp_path / "valid.parquet")
        rejected.to_parquet(tmp_path / "rejected.parquet")
        self.stderr = (tmp_path / "child.err").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                url,
                str(batch_id),
                str(tmp_path / "valid.parquet"),
                str(tmp_path / "rejected.parquet"),
                mode,
                APP,
            ],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.err_path = tmp_path / "child.err"

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.lines.get(timeout=0.2) == text:
                    return
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
        pytest.fail(f"child never printed {text!r}: {self.err_path.read_text()[-2000:]}")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.stderr.close()
        assert self.proc.returncode == -signal.SIGKILL


def child_backend(conn) -> tuple | None:
    return conn.execute(
        "select state, wait_event_type, left(query, 40) from pg_stat_activity "
        "where application_name = %s and datname = current_database()",
        (APP,),
    ).fetchone()


def poll(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def assert_batch_left_nothing(conn, batch_id, watermark_before) -> None:
    landed = conn.execute(
        "select (select count(*) from bronze.raw_crypto_prices where _batch_id = %(b)s),"
        "       (select count(*) from bronze.quarantine where _batch_id = %(b)s)",
        {"b": batch_id},
    ).fetchone()
    assert landed == (0, 0)
    assert watermarks.get_watermark(conn, "synthetic", "ohlcv", "BTC", "1h") == watermark_before
    assert watermarks.get_watermark(conn, "synthetic", "ohlcv", "ETH", "1h") is None
    status = conn.execute(
        "select status from bronze.ingestion_audit where batch_id = %s", (batch_id,)
    ).fetchone()
    assert status == ("running",)  # committed before the work: the kill is visible
    assert audit.expire_stale_running(conn, timedelta(0)) == [batch_id]


def test_killed_halfway_through_copy_leaves_nothing(warehouse_url, tmp_path):
    frame = hourly_candles(["BTC", "ETH"], START, ROWS_PER_SYMBOL)
    earlier = hourly_candles(["BTC"], START - timedelta(hours=100), 100)
    batch_id = uuid.uuid4()
    with connect(warehouse_url, autocommit=True) as conn:
        load(conn, earlier, uuid.uuid4())
        watermark_before = watermarks.get_watermark(conn, "synthetic", "ohlcv", "BTC", "1h")
        assert watermark_before == START - timedelta(hours=1)

        child = Child(
            tmp_path, warehouse_url, batch_id, frame, rejected_rows(frame), "pause-mid-copy"
        )
        child.wait_for("PAUSED")
        state, _, query = poll(lambda: child_backend(conn), "the child's backend")
        assert (state, query.lower()[:4]) == ("active", "copy")  # the COPY is in progress
        child.kill()
        poll(lambda: child_backend(conn) is None, "the killed backend to exit")

        assert_batch_left_nothing(conn, batch_id, watermark_before)
        assert conn.execute("select count(*) from bronze.raw_crypto_prices").fetchone() == (100,)

        rerun = load(conn, frame, batch_id, rejected_rows(frame))
        assert (rerun.rows_fetched, rerun.rows_inserted, rerun.rows_duplicate) == (
            200_002,
            200_000,
            0,
        )
        assert rerun.rows_quarantined == 2
        last = START + timedelta(hours=ROWS_PER_SYMBOL - 1)
        assert watermarks.get_watermarks(conn, "synthetic", "ohlcv") == {
            ("BTC", "1h"): last,
            ("ETH", "1h"): last,
        }


def test_killed_while_inserting_from_staging_leaves_nothing(warehouse_url, tmp_path):
    frame = hourly_candles(["BTC", "ETH"], START, ROWS_PER_SYMBOL)
    batch_id = uuid.uuid4()
    with (
        connect(warehouse_url, autocommit=True) as conn,
        connect(warehouse_url, autocommit=True) as locker,
    ):
        load(conn, frame.iloc[:1000], uuid.uuid4())  # overlaps the batch: it goes through staging
        watermark_before = watermarks.get_watermark(conn, "synthetic", "ohlcv", "BTC", "1h")

        with locker.transaction():
            locker.execute("lock table bronze.raw_crypto_prices in share mode")
            child = Child(tmp_path, warehouse_url, batch_id, frame, rejected_rows(frame), "plain")
            child.wait_for("LOADING")
            state, wait, query = poll(
                lambda: (row := child_backend(conn)) and row[1] == "Lock" and row,
                "the child's insert to wait on the lock",
            )
            assert query.lower().startswith('insert into "bronze"')
            child.kill()
        poll(lambda: child_backend(conn) is None, "the killed backend to exit")

        assert_batch_left_nothing(conn, batch_id, watermark_before)
        assert conn.execute("select count(*) from bronze.raw_crypto_prices").fetchone() == (1000,)

        rerun = load(conn, frame, batch_id, rejected_rows(frame))
        assert (rerun.rows_inserted, rerun.rows_duplicate, rerun.rows_quarantined) == (
            199_000,
            1000,
            2,
        )
        assert conn.execute(
            "select status, rows_inserted from bronze.ingestion_audit where batch_id = %s",
            (batch_id,),
        ).fetchone() == ("partial", 199_000)
