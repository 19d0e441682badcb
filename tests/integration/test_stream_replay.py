"""The stream against a local Binance replaying real recorded messages: bronze ends up with exactly
the expected candles, none missing and none twice, whatever the connection did.

Scenario: the real capture's frames (depth, bookTicker, aggTrade, open klines of other markets)
interleaved with BTCUSDT 1m candles built from the real REST recording (2021-10-22 23:03-23:12);
open updates, a repeated close message, two malformed frames; the connection drops after the 4th
candle; the second connection sends only the 9th and 10th. The REST backfill (a local HTTP server
serving the same recording) must supply the 5th to 8th, and the 9th and 10th arrive twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from pandas.testing import assert_frame_equal
from stream_fakes import (
    NOW,
    Drop,
    Hold,
    KlinesVenue,
    Pause,
    ScriptedBinance,
    Send,
    bronze_candles,
    configure_stream,
    count_rows,
    recorded_capture_frames,
    recorded_rest_klines,
    run_until,
    serve_klines,
    ws_from_rest,
)

from crypto_analytics.ingestion.sources.binance_format import parse_klines
from crypto_analytics.streaming.service import build_consumer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]


def test_replay_with_a_drop_lands_every_candle_exactly_once(
    warehouse_url, shared_data, httpserver, monkeypatch, tmp_path
):
    rows = recorded_rest_klines(shared_data)
    capture = recorded_capture_frames(shared_data)
    first: list = []
    for n, row in enumerate(rows[:4]):
        first += [Send(frame) for frame in capture[n * 40 : n * 40 + 40]]  # other streams' traffic
        first.append(Send(ws_from_rest(row, closed=False, close=row[1])))  # still forming
        first.append(Send(ws_from_rest(row)))  # the closed candle
        if n == 1:
            first.append(Send(ws_from_rest(row)))  # Binance repeats a close now and then
            first.append(
                Send('{"stream":"btcusdt@kline_1m","data":{"e":"kline","k":{"t":1}}')
            )  # cut
            first.append(
                Send(
                    '{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"k":'
                    '{"t":1634943900000,"T":1634943959999,"s":"BTCUSDT","i":"1m",'
                    '"o":"1","h":"1","l":"1","v":"1","x":true,"q":"1"}}}'
                )
            )  # no close
    first += [Pause(0.5), Drop()]
    second = [Send(ws_from_rest(rows[8])), Send(ws_from_rest(rows[9])), Hold()]
    venue = KlinesVenue(rows)
    rest_url = serve_klines(httpserver, venue)

    with ScriptedBinance([first, second]).running() as server:
        configure_stream(monkeypatch, tmp_path, CRYPTO_STREAM__WS_URL=server.url,
                         CRYPTO_STREAM__REST_URL=rest_url)  # fmt: skip
        consumer = run_until(
            lambda: build_consumer(feed="binance", clock=lambda: NOW),
            lambda: (
                count_rows(warehouse_url, "select count(*) from bronze.raw_crypto_prices") >= 10
                and count_rows(warehouse_url, "select reconnects from stream.heartbeat") >= 1
            ),
        )

    expected = parse_klines(
        rows, symbol="BTC", interval="1m", quote_currency="USDT", source_api="binance"
    )
    landed = bronze_candles(warehouse_url)
    landed["timestamp"] = pd.to_datetime(landed["timestamp"], utc=True)
    assert_frame_equal(landed, expected, check_dtype=False)  # all ten, once each, same values
    assert count_rows(warehouse_url, "select count(*) from bronze.quarantine") == 0

    # the reconnect asked REST for exactly the minutes after the 4th candle
    assert len(venue.requests) == 1
    assert venue.requests[0]["startTime"] == str(rows[4][0])
    assert int(venue.requests[0]["endTime"]) == rows[9][0] + 60_000 - 1
    assert server.paths[0] == "/stream?streams=btcusdt@kline_1m" and len(server.paths) == 2

    with psycopg.connect(warehouse_url) as conn:
        beat = conn.execute(
            """
            select status, reconnects, malformed_messages, candles_landed, backfilled_candles,
                   last_candle_at, duplicate_candles
            from stream.heartbeat where stream_id = 'binance:kline_1m'
            """
        ).fetchone()
        symbol = conn.execute(
            "select symbol, last_candle_at, last_close from stream.symbol_heartbeat"
        ).fetchone()
        lake_paths = conn.execute(
            "select lake_paths from bronze.ingestion_audit where source_api = 'binance'"
        ).fetchall()
    status, reconnects, malformed, landed_count, backfilled, last_candle, duplicates = beat
    assert (status, reconnects, malformed, landed_count) == ("stopped", 1, 2, 10)
    # REST supplies the 5th to 8th, and the 9th or 10th too when it lands before the stream's
    # copy; whichever comes second is a duplicate (the repeated close message is one more)
    assert 4 <= backfilled <= 6
    assert duplicates >= 1 + (6 - backfilled)
    assert last_candle == datetime(2021, 10, 22, 23, 12, tzinfo=UTC)
    assert symbol == ("BTC", datetime(2021, 10, 22, 23, 12, tzinfo=UTC), 60739.85)
    assert consumer.batcher.duplicates >= 1

    # the raw frames are in the lake byte for byte, malformed ones with their error
    raw_texts = []
    for (paths,) in lake_paths:
        manifest = json.loads(Path(paths[0]).read_text())
        for payload in manifest["payloads"]:
            body = json.loads((Path(paths[0]).parents[2] / payload["path"]).read_text())
            if isinstance(body, dict):  # a stream batch (a backfill keeps the REST body: a list)
                raw_texts += [(m["raw"], m.get("error")) for m in body["messages"]]
            else:
                assert body and all(len(row) == 12 for row in body)
    assert (ws_from_rest(rows[0]), None) in raw_texts
    errors = [error for _, error in raw_texts if error]
    assert len(errors) == 2 and any("k.c" in e for e in errors)
