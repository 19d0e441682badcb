"""Local stand-ins for exchanges: ccxt objects pointed at pytest-httpserver, and venue handlers.

Why a real HTTP server rather than mocking ccxt: the status codes, headers, timeouts and raw
bodies must travel through ccxt's own requests session and error handling, as they do live.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ccxt
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.ingestion.sources.exchange import build_exchange

NAUTILUS = Path("api_samples/binance/nautilus_trader")
KLINES_FILE = NAUTILUS / "http_spot_market_klines.json"
DEPTH_FILE = NAUTILUS / "http_spot_market_depth.json"
CRYPTOFEED_DEPTH_FILE = Path("api_samples/binance/cryptofeed_capture/BINANCE.http.0.0")


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Fresh settings with CRYPTO_* environment overrides (the way a user would set them)."""
    for key, value in env.items():
        monkeypatch.setenv(f"CRYPTO_{key}", value)
    get_settings.cache_clear()
    return get_settings()


@contextmanager
def local_server() -> Iterator[HTTPServer]:
    """A threaded server on 127.0.0.1, so a slow handler cannot block the retries behind it.

    Stopping one takes ~0.5 s (werkzeug's shutdown poll): share it per module, clear per test.
    """
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@contextmanager
def cleared(server: HTTPServer) -> Iterator[HTTPServer]:
    """The shared server with no handlers and an empty log, for one test."""
    server.clear()
    try:
        yield server
    finally:
        server.clear()


def binance_market(pair: str) -> dict[str, Any]:
    """The fields ccxt's Binance code reads from a spot market, as load_markets would build."""
    base, quote = pair.split("/")
    return {
        "id": f"{base}{quote}",
        "symbol": pair,
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "active": True,
    }


def local_binance(
    settings: Settings, server: HTTPServer, exchange_id: str = "binance"
) -> ccxt.Exchange:
    """Our production ccxt object (build_exchange) with its public API on the local server."""
    exchange = build_exchange(exchange_id, settings)
    exchange.enableRateLimit = False
    exchange.urls["api"]["public"] = f"http://{server.host}:{server.port}/api/v3"
    exchange.set_markets([binance_market("BTC/USDT"), binance_market("ETH/USDT")])
    return exchange


def local_bitstamp(settings: Settings, server: HTTPServer) -> ccxt.Exchange:
    """A non-Binance venue through ccxt's unified API (its candles carry no quote volume)."""
    exchange = build_exchange("bitstamp", settings)
    exchange.enableRateLimit = False
    exchange.urls["api"]["public"] = f"http://{server.host}:{server.port}/api"
    exchange.set_markets(
        [
            {
                "id": "btcusdt",
                "symbol": "BTC/USDT",
                "base": "BTC",
                "quote": "USDT",
                "baseId": "btc",
                "quoteId": "usdt",
                "type": "spot",
                "spot": True,
                "active": True,
            }
        ]
    )
    return exchange


def read_shared(shared_data: Path, relative: Path) -> bytes:
    return (shared_data / relative).read_bytes()


class KlineVenue:
    """Serves Binance `/api/v3/klines` from fixed rows, honouring startTime/endTime/limit.

    `overlap` re-sends that many candles before startTime, like venues whose pages repeat the
    boundary candle; `requests` records the query of every call.
    """

    def __init__(self, rows: Sequence[Sequence[Any]], overlap: int = 0) -> None:
        self.rows = [list(row) for row in rows]
        self.overlap = overlap
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        query = dict(request.args)
        self.requests.append(query)
        start = int(query.get("startTime", 0))
        end = int(query.get("endTime", 2**62))
        limit = int(query.get("limit", 500))
        first = next((i for i, row in enumerate(self.rows) if row[0] >= start), len(self.rows))
        first = max(0, first - self.overlap)
        page = [row for row in self.rows[first:] if row[0] <= end][:limit]
        return Response(json.dumps(page), content_type="application/json")


class Sequenced:
    """Answers with each response in turn (the last one repeats); counts the calls."""

    def __init__(self, *responses: Response | float) -> None:
        self.responses = list(responses)
        self.calls = 0

    def __call__(self, request: Request) -> Response:
        item = self.responses[min(self.calls, len(self.responses) - 1)]
        self.calls += 1
        if isinstance(item, float):  # a delay, then an empty page
            time.sleep(item)
            return Response("[]", content_type="application/json")
        return item
