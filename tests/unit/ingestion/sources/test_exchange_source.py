"""ExchangeSource end to end through ccxt against local HTTP servers (candles, pages, books)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from exchange_fakes import (
    DEPTH_FILE,
    KLINES_FILE,
    KlineVenue,
    cleared,
    configure,
    local_binance,
    local_bitstamp,
    local_server,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from crypto_analytics.config import Settings
from crypto_analytics.errors import ConfigError, SymbolUnavailable
from crypto_analytics.ingestion.frames import COLUMNS, Dataset
from crypto_analytics.ingestion.sources.exchange import ExchangeSource, build_exchange

T0 = datetime(2021, 10, 22, 23, 3, tzinfo=UTC)  # open time of the first recorded kline
T0_MS = 1634943780000
MINUTE_MS = 60_000


@pytest.fixture(scope="module")
def shared_server() -> Iterator[HTTPServer]:
    with local_server() as srv:
        yield srv


@pytest.fixture
def server(shared_server: HTTPServer) -> Iterator[HTTPServer]:
    with cleared(shared_server) as srv:
        yield srv


@pytest.fixture
def klines(shared_data: Path) -> list[list[Any]]:
    return json.loads((shared_data / KLINES_FILE).read_text())


def _source(settings: Settings, server: HTTPServer) -> ExchangeSource:
    return ExchangeSource(settings, local_binance(settings, server))


def test_candles_come_with_quote_volume_and_raw_bodies(
    settings: Settings, server: HTTPServer, klines: list[list[Any]]
) -> None:
    venue = KlineVenue(klines)
    server.expect_request("/api/v3/klines").respond_with_handler(venue)
    source = _source(settings, server)

    result = source.fetch_ohlcv(settings.token("BTC"), "1m", T0, T0 + timedelta(minutes=10))

    assert result.source_api == "binance" and result.dataset is Dataset.OHLCV
    frame = result.frame
    assert list(frame.columns) == COLUMNS[Dataset.OHLCV]
    assert len(frame) == 10
    assert frame.iloc[0]["timestamp"] == pd.Timestamp("2021-10-22 23:03", tz="UTC")
    assert frame.iloc[0]["quote_volume"] == 1313200.0134041
    assert frame.iloc[9]["quote_volume"] == 2875.424499
    assert set(frame["symbol"]) == {"BTC"} and set(frame["quote_currency"]) == {"USDT"}
    # one page (10 < 1000); what was asked and what came back are both kept
    assert venue.requests == [
        {
            "symbol": "BTCUSDT",
            "interval": "1m",
            "startTime": str(T0_MS),
            "endTime": str(T0_MS + 10 * MINUTE_MS - 1),
            "limit": "1000",
        }
    ]
    [payload] = result.payloads
    assert json.loads(payload.body) == klines
    assert payload.media_type == "application/json"
    assert "/api/v3/klines?" in payload.request and "startTime=1634943780000" in payload.request


def test_pagination_stops_at_end(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, klines: list[list[Any]]
) -> None:
    settings = configure(monkeypatch, SOURCES__EXCHANGE__PAGE_LIMIT="4")
    venue = KlineVenue(klines)
    server.expect_request("/api/v3/klines").respond_with_handler(venue)

    start, end = T0 + timedelta(minutes=1), T0 + timedelta(minutes=7)  # 23:04 .. 23:10 (excl.)
    result = _source(settings, server).fetch_ohlcv(settings.token("BTC"), "1m", start, end)

    expected = pd.date_range("2021-10-22 23:04", "2021-10-22 23:09", freq="1min", tz="UTC")
    assert list(result.frame["timestamp"]) == list(expected)
    # page 1: 23:04-23:07 (full), page 2 from 23:08: 2 candles (short) -> stop; never past end
    assert [int(q["startTime"]) for q in venue.requests] == [
        T0_MS + MINUTE_MS,
        T0_MS + 5 * MINUTE_MS,
    ]
    assert {int(q["endTime"]) for q in venue.requests} == {T0_MS + 7 * MINUTE_MS - 1}
    assert len(result.payloads) == 2


def test_pagination_with_overlapping_pages_yields_no_duplicates(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, klines: list[list[Any]]
) -> None:
    settings = configure(monkeypatch, SOURCES__EXCHANGE__PAGE_LIMIT="4")
    venue = KlineVenue(klines, overlap=1)  # every page repeats the candle before startTime
    server.expect_request("/api/v3/klines").respond_with_handler(venue)

    result = _source(settings, server).fetch_ohlcv(
        settings.token("BTC"), "1m", T0, T0 + timedelta(minutes=10)
    )

    frame = result.frame
    assert len(frame) == 10 and frame["timestamp"].is_unique
    assert frame["timestamp"].is_monotonic_increasing
    assert frame.iloc[3]["close"] == 60786.56  # 23:06, sent twice, kept once with its values
    assert len(venue.requests) == 3
    # 3 full pages of 4 rows went by, the last page reaching 23:12, then since=23:13 == end
    assert [int(q["startTime"]) for q in venue.requests] == [
        T0_MS,
        T0_MS + 4 * MINUTE_MS,
        T0_MS + 7 * MINUTE_MS,
    ]


def test_gaps_are_kept_as_gaps(
    server: HTTPServer, settings: Settings, klines: list[list[Any]]
) -> None:
    server.expect_request("/api/v3/klines").respond_with_handler(
        KlineVenue(klines[:3] + klines[6:])
    )
    result = _source(settings, server).fetch_ohlcv(
        settings.token("BTC"), "1m", T0, T0 + timedelta(minutes=10)
    )
    assert len(result.frame) == 7
    assert result.frame.iloc[3]["timestamp"] == pd.Timestamp("2021-10-22 23:09", tz="UTC")


def test_candle_still_forming_is_left_out(
    server: HTTPServer, settings: Settings, klines: list[list[Any]]
) -> None:
    now_minute = pd.Timestamp.now(tz="UTC").floor("min")
    recent = [
        [int((now_minute - pd.Timedelta(minutes=2 - i)).timestamp() * 1000), *klines[i][1:]]
        for i in range(3)
    ]
    server.expect_request("/api/v3/klines").respond_with_handler(KlineVenue(recent))
    start = now_minute.to_pydatetime() - timedelta(minutes=2)
    result = _source(settings, server).fetch_ohlcv(
        settings.token("BTC"), "1m", start, start + timedelta(minutes=3)
    )
    assert list(result.frame["timestamp"]) == [
        now_minute - pd.Timedelta(minutes=2),
        now_minute - pd.Timedelta(minutes=1),
    ]


def test_other_venues_go_through_unified_api_with_nan_quote_volume(
    server: HTTPServer, settings: Settings, klines: list[list[Any]]
) -> None:
    asked: list[dict[str, str]] = []

    def bitstamp_ohlc(request: Request) -> Response:
        asked.append(dict(request.args))
        start = int(request.args["start"])
        ohlc = [
            {
                "timestamp": str(row[0] // 1000),
                "open": row[1],
                "high": row[2],
                "low": row[3],
                "close": row[4],
                "volume": row[5],
            }
            for row in klines
            if row[0] // 1000 >= start
        ]
        return Response(
            json.dumps({"data": {"pair": "BTC/USDT", "ohlc": ohlc}}),
            content_type="application/json",
        )

    server.expect_request("/api/v2/ohlc/btcusdt/").respond_with_handler(bitstamp_ohlc)
    source = ExchangeSource(settings, local_bitstamp(settings, server))

    result = source.fetch_ohlcv(settings.token("BTC"), "1m", T0, T0 + timedelta(minutes=10))

    assert result.source_api == "bitstamp"
    assert len(result.frame) == 10
    row = result.frame.iloc[0]
    assert (row["open"], row["close"], row["volume"]) == (60685.22, 60719.27, 21.63272)
    assert result.frame["quote_volume"].isna().all()
    assert set(result.frame["source_api"]) == {"bitstamp"}
    assert asked[0]["step"] == "60" and asked[0]["start"] == str(T0_MS // 1000)


def test_order_book_from_recorded_depth(
    server: HTTPServer, settings: Settings, shared_data: Path
) -> None:
    body = (shared_data / DEPTH_FILE).read_bytes()
    server.expect_request(
        "/api/v3/depth", query_string="symbol=BTCUSDT&limit=10"
    ).respond_with_data(body, content_type="application/json")
    before = pd.Timestamp.now(tz="UTC").floor("ms")

    result = _source(settings, server).fetch_orderbook(settings.token("BTC"), 10)

    assert result.dataset is Dataset.ORDERBOOK and result.source_api == "binance"
    row = result.frame.iloc[0]
    assert list(result.frame.columns) == COLUMNS[Dataset.ORDERBOOK]
    assert (row["best_bid"], row["best_ask"], row["depth"]) == (60650.0, 60650.01, 10)
    assert row["spread"] == pytest.approx(0.01, abs=1e-9)
    assert row["mid"] == pytest.approx(60650.005, abs=1e-9)
    assert row["bids"][9] == [60639.93, 0.07282] and row["asks"][9] == [60659.94, 0.9617]
    # Binance depth has no timestamp: the receive time (UTC, ms) is used
    assert before <= row["timestamp"] <= pd.Timestamp.now(tz="UTC")
    assert row["timestamp"] == row["timestamp"].floor("ms")
    assert [p.body for p in result.payloads] == [body]


def test_order_book_uses_the_exchange_timestamp_when_given(
    server: HTTPServer, settings: Settings
) -> None:
    book = {
        "timestamp": "1634943780",
        "microtimestamp": "1634943780123456",
        "bids": [["60650.00", "0.5"], ["60649.00", "1"]],
        "asks": [["60651.00", "0.25"]],
    }
    server.expect_request("/api/v2/order_book/btcusdt/").respond_with_json(book)
    result = ExchangeSource(settings, local_bitstamp(settings, server)).fetch_orderbook(
        settings.token("BTC"), 20
    )
    row = result.frame.iloc[0]
    assert row["timestamp"] == pd.Timestamp("2021-10-22 23:03:00.123", tz="UTC")
    assert (row["best_bid"], row["best_ask"], row["spread"], row["mid"]) == (
        60650.0,
        60651.0,
        1.0,
        60650.5,
    )
    assert row["bids"] == [[60650.0, 0.5], [60649.0, 1.0]] and row["depth"] == 20


def test_tokens_without_an_exchange_pair_are_skipped_with_the_reason(
    server: HTTPServer, settings: Settings
) -> None:
    source = _source(settings, server)
    with pytest.raises(SymbolUnavailable, match="USDT is the quote currency"):
        source.fetch_ohlcv(settings.token("USDT"), "1h", T0, T0 + timedelta(hours=1))
    assert server.log == []


def test_pair_the_venue_does_not_list_is_symbol_unavailable(
    server: HTTPServer, settings: Settings
) -> None:
    with pytest.raises(SymbolUnavailable, match="SOL/USDT"):
        _source(settings, server).fetch_orderbook(settings.token("SOL"), 5)
    assert server.log == []


def test_bad_arguments_are_named(server: HTTPServer, settings: Settings) -> None:
    source = _source(settings, server)
    btc = settings.token("BTC")
    with pytest.raises(ConfigError, match="timezone-aware"):
        source.fetch_ohlcv(btc, "1h", datetime(2021, 1, 1), datetime(2021, 1, 2))
    with pytest.raises(ConfigError, match="empty window"):
        source.fetch_ohlcv(btc, "1h", T0, T0)
    with pytest.raises(ConfigError, match="unknown interval '2x'"):
        source.fetch_ohlcv(btc, "2x", T0, T0 + timedelta(hours=1))
    with pytest.raises(ConfigError, match="depth must be a positive integer"):
        source.fetch_orderbook(btc, 0)


def test_defaults_come_from_config(settings: Settings) -> None:
    source = ExchangeSource(settings)  # builds ccxt's binance; nothing is requested yet
    assert source.source_api == "binance"
    assert source.intervals() == ["1d", "1h"]
    assert source.exchange.timeout == 20_000
    assert source.datasets == frozenset({Dataset.OHLCV, Dataset.ORDERBOOK})
    assert not math.isnan(source.exchange.rateLimit)


def test_markets_load_from_spot_exchange_info_only_and_are_not_kept_as_data(
    server: HTTPServer, settings: Settings, shared_data: Path
) -> None:
    """Binance's futures hosts are geoblocked too and absent from the mirror: spot only."""
    info = {
        "timezone": "UTC",
        "serverTime": 1634943780000,
        "symbols": [
            {
                "symbol": "BTCUSDT",
                "status": "TRADING",
                "baseAsset": "BTC",
                "quoteAsset": "USDT",
                "baseAssetPrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True,
                "filters": [],
                "permissionSets": [["SPOT"]],
            }
        ],
    }
    server.expect_request("/api/v3/exchangeInfo").respond_with_json(info)
    depth = (shared_data / DEPTH_FILE).read_bytes()
    server.expect_request("/api/v3/depth").respond_with_data(depth, content_type="application/json")
    exchange = build_exchange("binance", settings)
    exchange.enableRateLimit = False
    local = f"http://{server.host}:{server.port}"
    exchange.urls["api"] = {key: f"{local}/{key}" for key in exchange.urls["api"]}
    exchange.urls["api"]["public"] = f"{local}/api/v3"

    result = ExchangeSource(settings, exchange).fetch_orderbook(settings.token("BTC"), 10)

    assert [request.path for request, _ in server.log] == ["/api/v3/exchangeInfo", "/api/v3/depth"]
    assert [p.body for p in result.payloads] == [depth]
    assert result.frame.iloc[0]["quote_currency"] == "USDT"
