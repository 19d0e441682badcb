"""ExchangeSource under failure: each HTTP fault maps to the platform error callers act on.

The ccxt exchange talks to local servers; retries are real (tenacity via call_with_retries) with
the tiny waits conftest configures, and CRYPTO_INGESTION__MAX_RETRIES kept small.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ccxt
import pytest
from exchange_fakes import (
    KLINES_FILE,
    KlineVenue,
    Sequenced,
    cleared,
    configure,
    local_binance,
    local_server,
)
from pytest_httpserver import HTTPServer
from werkzeug import Response

from crypto_analytics.errors import (
    BadPayload,
    Geoblocked,
    RateLimited,
    SourceUnavailable,
    SymbolUnavailable,
)
from crypto_analytics.ingestion.sources.base import FetchResult
from crypto_analytics.ingestion.sources.exchange import ExchangeSource

T0 = datetime(2021, 10, 22, 23, 3, tzinfo=UTC)
T1 = T0 + timedelta(minutes=10)
BLOCKED = '{"code":0,"msg":"Service unavailable from a restricted location according to \'b. Eligibility\'"}'


@pytest.fixture(scope="module")
def _main_server() -> Iterator[HTTPServer]:
    with local_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def _second_server() -> Iterator[HTTPServer]:
    with local_server() as srv:
        yield srv


@pytest.fixture
def server(_main_server: HTTPServer) -> Iterator[HTTPServer]:
    with cleared(_main_server) as srv:
        yield srv


@pytest.fixture
def fallback(_second_server: HTTPServer) -> Iterator[HTTPServer]:
    with cleared(_second_server) as srv:
        yield srv


@pytest.fixture
def klines_body(shared_data: Path) -> bytes:
    return (shared_data / KLINES_FILE).read_bytes()


def _json(body: bytes | str, status: int = 200, **headers: str) -> Response:
    return Response(body, status=status, headers=headers, content_type="application/json")


def _source(monkeypatch: pytest.MonkeyPatch, server: HTTPServer, **env: str) -> ExchangeSource:
    env.setdefault("INGESTION__MAX_RETRIES", "2")
    env.setdefault("SOURCES__EXCHANGE__FALLBACK_HOSTS", "[]")  # never the real mirror in tests
    settings = configure(monkeypatch, **env)
    return ExchangeSource(settings, local_binance(settings, server))


def _fetch(source: ExchangeSource) -> FetchResult:
    return source.fetch_ohlcv(source.settings.token("BTC"), "1m", T0, T1)


def test_429_with_retry_after_is_retried_then_data_returned(
    monkeypatch: pytest.MonkeyPatch,
    server: HTTPServer,
    klines_body: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Sequenced(
        _json('{"code":-1003,"msg":"Too much request weight used"}', 429, **{"Retry-After": "7"}),
        _json(klines_body),
    )
    server.expect_request("/api/v3/klines").respond_with_handler(handler)
    source = _source(monkeypatch, server)

    with caplog.at_level(logging.WARNING, logger="crypto_analytics.ingestion.http"):
        result = _fetch(source)

    assert handler.calls == 2
    assert len(result.frame) == 10 and result.frame.iloc[0]["open"] == 60685.22
    # Retry-After (7 s) outranks the 0.01 s backoff, capped by retry_max_seconds (0.5 in tests)
    assert "retrying in 0.5s" in caplog.text
    assert len(result.payloads) == 1  # the 429 body is not data


def test_418_ban_without_retry_after_ends_as_rate_limited(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    handler = Sequenced(
        _json('{"code":-1003,"msg":"Way too much request weight used; IP banned"}', 418)
    )
    server.expect_request("/api/v3/klines").respond_with_handler(handler)
    with pytest.raises(RateLimited, match="HTTP 418") as caught:
        _fetch(_source(monkeypatch, server, INGESTION__MAX_RETRIES="1"))
    assert caught.value.retry_after is None
    assert handler.calls == 2


def test_451_falls_back_to_the_next_host(
    monkeypatch: pytest.MonkeyPatch,
    server: HTTPServer,
    fallback: HTTPServer,
    klines_body: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.expect_request("/api/v3/klines").respond_with_response(_json(BLOCKED, 451))
    venue = KlineVenue(json.loads(klines_body))
    fallback.expect_request("/api/v3/klines").respond_with_handler(venue)
    mirror = f"http://{fallback.host}:{fallback.port}"
    source = _source(monkeypatch, server, SOURCES__EXCHANGE__FALLBACK_HOSTS=json.dumps([mirror]))

    with caplog.at_level(logging.WARNING):
        result = _fetch(source)

    assert len(server.log) == 1  # a 451 is not retried on the same host
    assert len(venue.requests) == 1
    assert len(result.frame) == 10 and result.source_api == "binance"
    assert result.payloads[0].request.startswith(f"{mirror}/api/v3/klines?")
    assert source.exchange.urls["api"]["public"] == f"{mirror}/api/v3"
    assert f"retrying on fallback host {mirror}" in caplog.text
    # the switch sticks: the next request goes straight to the mirror
    source.fetch_ohlcv(source.settings.token("BTC"), "1m", T0, T1)
    assert len(server.log) == 1 and len(venue.requests) == 2


def test_451_everywhere_switches_to_the_fallback_exchange(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, fallback: HTTPServer, klines_body: bytes
) -> None:
    server.expect_request("/api/v3/klines").respond_with_response(_json(BLOCKED, 451))
    fallback.expect_request("/api/v3/klines").respond_with_handler(
        KlineVenue(json.loads(klines_body))
    )
    settings = configure(
        monkeypatch,
        INGESTION__MAX_RETRIES="1",
        SOURCES__EXCHANGE__FALLBACK_HOSTS="[]",
        SOURCES__EXCHANGE__FALLBACK_EXCHANGE_ID="binanceus",
    )
    built: list[str] = []

    def factory(exchange_id: str) -> ccxt.Exchange:
        built.append(exchange_id)
        return local_binance(settings, fallback, exchange_id)

    source = ExchangeSource(settings, local_binance(settings, server), exchange_factory=factory)
    result = _fetch(source)

    assert built == ["binanceus"]
    assert result.source_api == "binanceus" and source.source_api == "binanceus"
    assert set(result.frame["source_api"]) == {"binanceus"}
    assert result.frame.iloc[9]["quote_volume"] == 2875.424499  # Binance.US rows have field 7 too


def test_451_with_no_fallback_left_says_which_setting_to_change(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    server.expect_request("/api/v3/klines").respond_with_response(_json(BLOCKED, 451))
    with pytest.raises(Geoblocked, match="fallback_exchange_id") as caught:
        _fetch(_source(monkeypatch, server))
    assert f"http://{server.host}:{server.port}" in str(caught.value)
    assert len(server.log) == 1


def test_repeated_500_is_source_unavailable_after_retries(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    handler = Sequenced(Response("<html>502 Bad Gateway</html>", status=500))
    server.expect_request("/api/v3/klines").respond_with_handler(handler)
    with pytest.raises(SourceUnavailable, match="HTTP 500"):
        _fetch(_source(monkeypatch, server, INGESTION__MAX_RETRIES="2"))
    assert handler.calls == 3


def test_500_then_success_recovers(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, klines_body: bytes
) -> None:
    handler = Sequenced(Response("busy", status=503), _json(klines_body))
    server.expect_request("/api/v3/klines").respond_with_handler(handler)
    assert len(_fetch(_source(monkeypatch, server)).frame) == 10
    assert handler.calls == 2


def test_timeout_is_source_unavailable_after_retries(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    handler = Sequenced(1.0)  # answers after 1 s; the client gives up after 0.2 s
    server.expect_request("/api/v3/klines").respond_with_handler(handler)
    source = _source(
        monkeypatch, server, INGESTION__MAX_RETRIES="1", INGESTION__HTTP_TIMEOUT_SECONDS="0.2"
    )
    assert source.exchange.timeout == 200
    with pytest.raises(SourceUnavailable, match=r"no answer within 0.2s"):
        _fetch(source)
    assert handler.calls == 2


@pytest.mark.parametrize(
    "body",
    ['[[1634943780000,"60685.22000000","60729.84000000"', "<html>maintenance</html>", ""],
    ids=["truncated", "html", "empty"],
)
def test_malformed_json_is_bad_payload_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, body: str
) -> None:
    handler = Sequenced(_json(body))
    server.expect_request("/api/v3/klines").respond_with_handler(handler)
    with pytest.raises(BadPayload, match="malformed or truncated JSON"):
        _fetch(_source(monkeypatch, server))
    assert handler.calls == 1


def test_real_klines_body_cut_short_is_bad_payload(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, klines_body: bytes
) -> None:
    server.expect_request("/api/v3/klines").respond_with_response(
        _json(klines_body[: len(klines_body) // 2])
    )
    with pytest.raises(
        BadPayload, match=r"truncated JSON from http://.*/api/v3/klines\?.*\(1172 bytes\)"
    ):
        _fetch(_source(monkeypatch, server))


def test_malformed_order_book_is_bad_payload(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    server.expect_request("/api/v3/depth").respond_with_response(
        _json('{"lastUpdateId":1,"bids":[["6')
    )
    source = _source(monkeypatch, server)
    with pytest.raises(BadPayload, match="malformed or truncated JSON"):
        source.fetch_orderbook(source.settings.token("BTC"), 5)


def test_well_formed_json_of_the_wrong_shape_is_bad_payload(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    server.expect_request("/api/v3/klines").respond_with_response(_json('[[1634943780000, "1"]]'))
    with pytest.raises(BadPayload, match="row 0 has 2 fields, expected 12"):
        _fetch(_source(monkeypatch, server))


def test_invalid_symbol_answer_is_symbol_unavailable(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    handler = Sequenced(_json('{"code":-1121,"msg":"Invalid symbol."}', 400))
    server.expect_request("/api/v3/klines").respond_with_handler(handler)
    with pytest.raises(SymbolUnavailable, match="Invalid symbol"):
        _fetch(_source(monkeypatch, server))
    assert handler.calls == 1
