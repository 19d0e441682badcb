"""YahooSource against a local server speaking Yahoo's v8 chart API through yfinance's YfData.

The client is a real yfinance.data.YfData (curl_cffi session, crumb added to the query, its own
retry on 4xx/429) whose cookie+crumb step is replaced by a fixed crumb, so no test ever reaches
Yahoo. What is left is exactly the production path from URL to FetchResult.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from yfinance._http import new_session
from yfinance.data import YfData

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import (
    BadPayload,
    DatasetNotSupported,
    HistoryLimitExceeded,
    RateLimited,
    SourceUnavailable,
    SymbolUnavailable,
)
from crypto_analytics.ingestion.sources.yahoo import YahooSource

CHART_FILE = "api_samples/yahoo/node-yahoo-finance2/chart-BTC-USD-2020-01-01-to-2020-01-03.json"
CHART_PATH = "/v8/finance/chart/BTC-USD"
NOW = datetime(2025, 2, 20, 12, 0, tzinfo=UTC)
JAN_1 = datetime(2020, 1, 1, tzinfo=UTC)
JAN_3 = datetime(2020, 1, 3, tzinfo=UTC)


@pytest.fixture
def chart_body(shared_data: Path) -> bytes:
    recorded = json.loads((shared_data / CHART_FILE).read_text())
    return json.dumps(recorded["response"]["bodyJson"]).encode()


@pytest.fixture
def yf_client(monkeypatch: pytest.MonkeyPatch) -> YfData:
    """A private YfData (not the process singleton) that never fetches a real cookie or crumb."""
    client: YfData = type.__call__(YfData, new_session())
    monkeypatch.setattr(client, "_get_cookie_and_crumb", lambda timeout=30: ("test-crumb", "basic"))
    return client


@pytest.fixture
def make_source(
    httpserver: HTTPServer, yf_client: YfData, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., YahooSource]:
    def make(now: datetime = NOW, **env: str) -> YahooSource:
        for key, value in env.items():
            monkeypatch.setenv(f"CRYPTO_INGESTION__{key.upper()}", value)
        get_settings.cache_clear()
        settings: Settings = get_settings()
        return YahooSource(
            settings, base_url=httpserver.url_for("/"), client=yf_client, now=lambda: now
        )

    return make


def btc(settings: Settings) -> Any:
    return settings.token("BTC")


def test_fetch_keeps_raw_bytes_and_returns_candles_in_half_open_window(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource], chart_body: bytes
) -> None:
    httpserver.expect_request(CHART_PATH).respond_with_data(
        chart_body, content_type="application/json"
    )
    source = make_source()

    result = source.fetch_ohlcv(btc(source.settings), "1d", JAN_1, JAN_3)

    # Yahoo also sends the candle at period2 (2020-01-03); [start, end) leaves it out.
    assert list(result.frame["timestamp"]) == [
        pd.Timestamp("2020-01-01T00:00:00Z"),
        pd.Timestamp("2020-01-02T00:00:00Z"),
    ]
    assert list(result.frame["close"]) == [7200.17431640625, 6985.47021484375]
    assert result.source_api == "yahoo"
    assert len(result.payloads) == 1
    assert result.payloads[0].body == chart_body
    assert "crumb" not in result.payloads[0].request
    assert "period1=1577836800&period2=1578009600&interval=1d" in result.payloads[0].request

    ((request, _),) = httpserver.log
    assert request.args["period1"] == "1577836800"
    assert request.args["period2"] == "1578009600"
    assert request.args["interval"] == "1d"
    assert request.args["crumb"] == "test-crumb"  # went through YfData's crumb machinery


def test_candle_still_forming_is_left_out(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource], chart_body: bytes
) -> None:
    httpserver.expect_request(CHART_PATH).respond_with_data(chart_body)
    source = make_source(now=datetime(2020, 1, 2, 12, 0, tzinfo=UTC))

    result = source.fetch_ohlcv(btc(source.settings), "1d", JAN_1, JAN_3)

    assert list(result.frame["timestamp"]) == [pd.Timestamp("2020-01-01T00:00:00Z")]


def test_rate_limit_then_success_is_retried(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource], chart_body: bytes
) -> None:
    # YfData retries a 429 once itself, then raises YFRateLimitError; we map it and retry.
    for _ in range(2):
        httpserver.expect_oneshot_request(CHART_PATH).respond_with_data(
            "Too Many Requests", status=429, headers={"Retry-After": "1"}
        )
    httpserver.expect_request(CHART_PATH).respond_with_data(chart_body)
    source = make_source()

    result = source.fetch_ohlcv(btc(source.settings), "1d", JAN_1, JAN_3)

    assert len(result.frame) == 2
    assert len(httpserver.log) == 3


def test_yfratelimiterror_becomes_rate_limited(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource]
) -> None:
    httpserver.expect_request(CHART_PATH).respond_with_data("Too Many Requests", status=429)
    source = make_source(max_retries="0")

    with pytest.raises(RateLimited, match="Yahoo rate limit"):
        source.fetch_ohlcv(btc(source.settings), "1d", JAN_1, JAN_3)
    assert len(httpserver.log) == 2  # YfData's own second try, no more


def test_repeated_500_is_source_unavailable_after_retries(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource]
) -> None:
    httpserver.expect_request(CHART_PATH).respond_with_data("upstream broke", status=500)
    source = make_source(max_retries="2")

    with pytest.raises(SourceUnavailable, match="HTTP 500"):
        source.fetch_ohlcv(btc(source.settings), "1d", JAN_1, JAN_3)
    assert len(httpserver.log) == 6  # 3 attempts, each tried twice by YfData


def test_timeout_is_source_unavailable(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource]
) -> None:
    answered = threading.Event()

    def slow(request: Request) -> Response:
        time.sleep(0.4)
        answered.set()
        return Response("{}", content_type="application/json")

    httpserver.expect_request(CHART_PATH).respond_with_handler(slow)
    source = make_source(max_retries="0", http_timeout_seconds="0.1")

    with pytest.raises(SourceUnavailable, match=r"timed out after 0.1s"):
        source.fetch_ohlcv(btc(source.settings), "1d", JAN_1, JAN_3)
    answered.wait(5)  # let the server finish, so its late log entry lands in this test


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
def test_malformed_or_truncated_json_is_bad_payload_and_not_retried(
    httpserver: HTTPServer,
    make_source: Callable[..., YahooSource],
    chart_body: bytes,
    kind: str,
) -> None:
    body = b"<html>Will be right back</html>" if kind == "malformed" else chart_body[:500]
    httpserver.expect_request(CHART_PATH).respond_with_data(body)
    source = make_source()

    with pytest.raises(BadPayload, match="malformed chart JSON"):
        source.fetch_ohlcv(btc(source.settings), "1d", JAN_1, JAN_3)
    assert len(httpserver.log) == 1


def test_chart_error_is_symbol_unavailable(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource]
) -> None:
    error = {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }
    httpserver.expect_request("/v8/finance/chart/BUSD-USD").respond_with_json(error, status=404)
    source = make_source()

    with pytest.raises(SymbolUnavailable, match="BUSD-USD: Yahoo says 'No data found, symbol may"):
        source.fetch_ohlcv(source.settings.token("BUSD"), "1d", JAN_1, JAN_3)
    assert len(httpserver.log) == 2  # YfData's one retry with a fresh crumb; ours: none


def test_intraday_start_is_clamped_to_yahoo_history_limit(
    httpserver: HTTPServer,
    make_source: Callable[..., YahooSource],
    chart_body: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = json.loads(chart_body)
    body["chart"]["result"][0]["meta"]["dataGranularity"] = "1h"
    httpserver.expect_request(CHART_PATH).respond_with_json(body)
    source = make_source()

    with caplog.at_level(logging.WARNING):
        source.fetch_ohlcv(btc(source.settings), "1h", NOW - timedelta(days=800), NOW)

    # 730 days before 2025-02-20 12:00 is 2023-02-21 12:00; the first candle after it opens 13:00.
    ((request, _),) = httpserver.log
    assert request.args["period1"] == str(int(datetime(2023, 2, 21, 13, tzinfo=UTC).timestamp()))
    assert "730 days" in caplog.text and "clamped" in caplog.text


def test_intraday_window_wholly_beyond_the_limit_raises_without_a_request(
    httpserver: HTTPServer, make_source: Callable[..., YahooSource]
) -> None:
    source = make_source()
    with pytest.raises(HistoryLimitExceeded, match=r"1h candles for 730 days"):
        source.fetch_ohlcv(
            btc(source.settings), "1h", NOW - timedelta(days=800), NOW - timedelta(days=731)
        )
    assert httpserver.log == []


def test_interval_yahoo_lacks_is_not_supported(make_source: Callable[..., YahooSource]) -> None:
    source = make_source()
    with pytest.raises(DatasetNotSupported, match="no 4h candles"):
        source.fetch_ohlcv(btc(source.settings), "4h", JAN_1, JAN_3)
