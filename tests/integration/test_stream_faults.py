"""What the venue does to a connection, against a local Binance: HTTP 451 (fall back to the
market-data-only host), a refusing venue (capped backoff, `unreachable` in the heartbeat, no
storm), a serverShutdown notice and the connection-age limit (reconnect at once and backfill)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest
from stream_fakes import (
    NOW,
    Hold,
    KlinesVenue,
    Refuse,
    ScriptedBinance,
    Send,
    SilentPeer,
    bronze_candles,
    configure_stream,
    count_rows,
    recorded_rest_klines,
    run_until,
    serve_klines,
    ws_from_rest,
)

from crypto_analytics.streaming.service import build_consumer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SHUTDOWN = '{"event":{"e":"serverShutdown","E":1634944000000}}'


def maybe_heartbeat(url: str) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            """
            select status, host, reconnects, consecutive_failures, last_error, next_retry_at,
                   candles_landed
            from stream.heartbeat
            """
        ).fetchone()


def heartbeat(url: str) -> tuple:
    row = maybe_heartbeat(url)
    assert row is not None
    return row


def test_http_451_moves_to_the_market_data_host_and_stays(
    warehouse_url, shared_data, httpserver, monkeypatch, tmp_path
):
    rows = recorded_rest_klines(shared_data)
    rest_url = serve_klines(httpserver, KlinesVenue(rows))
    blocked = ScriptedBinance([[Refuse(451)]])
    mirror = ScriptedBinance([[Send(ws_from_rest(rows[0])), Send(ws_from_rest(rows[1])), Hold()]])
    with blocked.running(), mirror.running():
        configure_stream(
            monkeypatch,
            tmp_path,
            CRYPTO_STREAM__WS_URL=blocked.url,
            CRYPTO_STREAM__FALLBACK_WS_URLS=f'["{mirror.url}"]',
            CRYPTO_STREAM__REST_URL=rest_url,
        )
        run_until(
            lambda: build_consumer(feed="binance", clock=lambda: NOW),
            lambda: count_rows(warehouse_url, "select count(*) from bronze.raw_crypto_prices") >= 2,
        )
    assert blocked.handshakes == 1  # asked once, never again
    assert mirror.handshakes == 1
    assert len(bronze_candles(warehouse_url)) == 2
    status, host, reconnects, failures, *_ = heartbeat(warehouse_url)
    assert (status, host, reconnects, failures) == ("stopped", mirror.url, 0, 0)


def test_a_refusing_venue_is_retried_with_capped_backoff_and_reported_unreachable(
    warehouse_url, monkeypatch, tmp_path
):
    venue = ScriptedBinance([[Refuse(503)] for _ in range(200)])
    with venue.running():
        configure_stream(
            monkeypatch,
            tmp_path,
            CRYPTO_STREAM__WS_URL=venue.url,
            CRYPTO_STREAM__REST_URL="http://127.0.0.1:9",
            CRYPTO_STREAM__BACKOFF_INITIAL_SECONDS="0.05",
            CRYPTO_STREAM__BACKOFF_MAX_SECONDS="0.4",
        )
        started = time.monotonic()
        seen: list[tuple] = []

        def unreachable_for_a_while() -> bool:
            beat = maybe_heartbeat(warehouse_url)  # None until the first beat is written
            if beat is not None:
                seen.append(beat)
            return time.monotonic() - started > 3.0

        run_until(
            lambda: build_consumer(feed="binance", clock=lambda: NOW), unreachable_for_a_while
        )
        elapsed = time.monotonic() - started
    # delays 0.025-0.05, 0.05-0.1, 0.1-0.2, then 0.2-0.4 s each: about 10 attempts in 3 s at most
    # 3 / 0.2 + 4 = 19, never the hundreds an unthrottled loop makes
    assert 5 <= venue.handshakes <= elapsed / 0.2 + 4
    statuses = {beat[0] for beat in seen}
    assert "unreachable" in statuses
    unreachable = [beat for beat in seen if beat[0] == "unreachable"][-1]
    assert unreachable[3] >= 3  # consecutive failures
    assert "HTTP 503" in unreachable[4]
    assert unreachable[5] is not None  # when the next attempt is due
    assert count_rows(warehouse_url, "select count(*) from bronze.raw_crypto_prices") == 0


def test_server_shutdown_notice_reconnects_at_once_and_backfills(
    warehouse_url, shared_data, httpserver, monkeypatch, tmp_path
):
    rows = recorded_rest_klines(shared_data)
    venue = KlinesVenue(rows)
    rest_url = serve_klines(httpserver, venue)
    first = [Send(ws_from_rest(rows[0])), Send(ws_from_rest(rows[1])), Send(SHUTDOWN), Hold()]
    second = [Send(ws_from_rest(rows[4])), Send(ws_from_rest(rows[5])), Hold()]
    server = ScriptedBinance([first, second])
    with server.running():
        configure_stream(
            monkeypatch,
            tmp_path,
            CRYPTO_STREAM__WS_URL=server.url,
            CRYPTO_STREAM__REST_URL=rest_url,
            # the clock says the 6th candle (23:08) is the last closed one
        )
        clock = datetime(2021, 10, 22, 23, 9, 0, 200000, tzinfo=UTC)
        run_until(
            lambda: build_consumer(feed="binance", clock=lambda: clock),
            lambda: count_rows(warehouse_url, "select count(*) from bronze.raw_crypto_prices") >= 6,
        )
    landed = bronze_candles(warehouse_url)
    assert [ts.minute for ts in landed["timestamp"]] == [3, 4, 5, 6, 7, 8]
    assert server.handshakes == 2
    assert venue.requests[0]["startTime"] == str(rows[2][0])  # from the 3rd candle on
    _, _, reconnects, failures, error, *_ = heartbeat(warehouse_url)
    assert reconnects == 1 and "serverShutdown" in error


def test_connection_age_limit_reconnects_before_the_venue_cuts(
    warehouse_url, shared_data, httpserver, monkeypatch, tmp_path
):
    rows = recorded_rest_klines(shared_data)
    rest_url = serve_klines(httpserver, KlinesVenue(rows))
    server = ScriptedBinance(
        [[Send(ws_from_rest(rows[0])), Hold()], [Send(ws_from_rest(rows[2])), Hold()]]
    )
    with server.running():
        configure_stream(
            monkeypatch,
            tmp_path,
            CRYPTO_STREAM__WS_URL=server.url,
            CRYPTO_STREAM__REST_URL=rest_url,
            CRYPTO_STREAM__MAX_CONNECTION_HOURS=str(1.0 / 3600),  # one second
        )
        clock = datetime(2021, 10, 22, 23, 6, 0, 200000, tzinfo=UTC)
        run_until(
            lambda: build_consumer(feed="binance", clock=lambda: clock),
            lambda: count_rows(warehouse_url, "select count(*) from bronze.raw_crypto_prices") >= 3,
        )
    assert [ts.minute for ts in bronze_candles(warehouse_url)["timestamp"]] == [3, 4, 5]
    _, _, reconnects, _, error, *_ = heartbeat(warehouse_url)
    assert reconnects >= 1 and "connection age limit" in error


def test_pings_are_answered_and_a_silent_peer_is_left_for_a_new_connection(
    warehouse_url, monkeypatch, tmp_path
):
    # a venue that pings every 0.2 s and drops a client that does not pong within 0.2 s
    pinging = ScriptedBinance([[Hold()]], ping_interval=0.2)
    silent = SilentPeer()
    try:
        with pinging.running():
            configure_stream(
                monkeypatch,
                tmp_path,
                CRYPTO_STREAM__WS_URL=pinging.url,
                CRYPTO_STREAM__REST_URL="http://127.0.0.1:9",
                CRYPTO_STREAM__PING_INTERVAL_SECONDS="30",
            )
            connected: list[float] = []

            def two_seconds_connected() -> bool:
                if pinging.handshakes and not connected:
                    connected.append(time.monotonic())
                return bool(connected) and time.monotonic() - connected[0] > 2.0

            run_until(
                lambda: build_consumer(feed="binance", clock=lambda: NOW),
                two_seconds_connected,
            )
            assert pinging.handshakes == 1  # answered every ping: never dropped
            assert heartbeat(warehouse_url)[2] == 0

        # our own pings find a peer that stopped answering, and we connect again
        configure_stream(
            monkeypatch,
            tmp_path,
            CRYPTO_STREAM__WS_URL=silent.url,
            CRYPTO_STREAM__REST_URL="http://127.0.0.1:9",
            CRYPTO_STREAM__PING_INTERVAL_SECONDS="0.2",
            CRYPTO_STREAM__PING_TIMEOUT_SECONDS="0.3",
        )
        run_until(
            lambda: build_consumer(feed="binance", clock=lambda: NOW),
            lambda: silent.accepted >= 2,
            timeout=15,
        )
        assert silent.accepted >= 2
        assert (
            "ping" in heartbeat(warehouse_url)[4].lower() or "1011" in heartbeat(warehouse_url)[4]
        )
    finally:
        silent.close()
