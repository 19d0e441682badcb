"""`crypto-analytics stream` as a real process: SIGTERM flushes the pending micro-batch, marks
the heartbeat stopped and exits 0; a second stream for the same feed is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from stream_fakes import (
    Hold,
    ScriptedBinance,
    Send,
    bronze_candles,
    configure_stream,
    recorded_rest_klines,
    ws_from_rest,
)

# slow: two processes each import ccxt and pandas (seconds apiece on a busy 2-core machine)
pytestmark = [pytest.mark.integration, pytest.mark.shared_data, pytest.mark.slow]

CLI = Path(sys.executable).parent / "crypto-analytics"


def wait_for(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def messages_received(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("select messages_received from stream.heartbeat").fetchone()
    return int(row[0]) if row else 0


def test_sigterm_flushes_the_pending_batch_and_exits_cleanly(
    warehouse_url, shared_data, monkeypatch, tmp_path
):
    rows = recorded_rest_klines(shared_data)
    frames = [Send(ws_from_rest(row)) for row in rows[:3]]
    server = ScriptedBinance([[*frames, Hold()]])
    with server.running():
        # ETH never sends, so BTC's minute is never "complete" and the batch waits for its
        # 10-minute age limit: only the shutdown can land it
        configure_stream(
            monkeypatch,
            tmp_path,
            CRYPTO_STREAM__WS_URL=server.url,
            CRYPTO_STREAM__SYMBOLS='["BTC", "ETH"]',
            CRYPTO_STREAM__REST_URL="http://127.0.0.1:9",
            CRYPTO_STREAM__FLUSH_SECONDS="600",
            CRYPTO_STREAM__HEARTBEAT_SECONDS="0.2",
        )
        process = subprocess.Popen(
            [str(CLI), "-v", "stream", "--feed", "binance"],
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(lambda: messages_received(warehouse_url) >= 3)
            assert bronze_candles(warehouse_url).empty  # still pending in the batcher

            second = subprocess.run(
                [str(CLI), "stream", "--feed", "binance"],
                env=os.environ.copy(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1
            assert "already running" in second.stderr and f"pid {process.pid}" in second.stderr

            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, output
    assert time.monotonic() - started < 10
    landed = bronze_candles(warehouse_url)
    assert [ts.minute for ts in landed["timestamp"]] == [3, 4, 5]
    with psycopg.connect(warehouse_url) as conn:
        status, candles = conn.execute(
            "select status, candles_landed from stream.heartbeat"
        ).fetchone()
    assert (status, candles) == ("stopped", 3)
    assert "Traceback" not in output
