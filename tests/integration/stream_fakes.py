"""A local Binance for the stream tests: a WebSocket server that plays scripted sessions of real
recorded frames, and a REST klines venue for the backfill.

Why real servers: reconnects, dropped TCP connections, HTTP 451 handshakes and pings must travel
through the `websockets` client and ccxt's HTTP stack exactly as they do live.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from pytest_httpserver import HTTPServer
from websockets.asyncio.server import ServerConnection, serve
from werkzeug import Request, Response

from crypto_analytics.config import get_settings
from crypto_analytics.streaming.consumer import StreamConsumer

NAUTILUS = Path("api_samples/binance/nautilus_trader")
CAPTURE = Path("api_samples/binance/cryptofeed_capture/BINANCE.ws.1.0")


def recorded_rest_klines(shared_data: Path) -> list[list[Any]]:
    """Real GET /api/v3/klines rows: BTCUSDT 1m, 2021-10-22 23:03 to 23:12 UTC."""
    return json.loads((shared_data / NAUTILUS / "http_spot_market_klines.json").read_text())


def recorded_capture_frames(shared_data: Path) -> list[str]:
    """The real combined-stream frames of the cryptofeed capture (depth, bookTicker, aggTrade and
    two open klines of markets we do not subscribe to)."""
    lines = (shared_data / CAPTURE).read_text().splitlines()[1:]
    return [line.split(": ", 1)[1] for line in lines if ": " in line]


def ws_from_rest(
    row: Sequence[Any], market: str = "BTCUSDT", *, closed: bool = True, close: str | None = None
) -> str:
    """A recorded REST kline as the stream sends the same candle: same decimal strings; an open
    update may carry a different (intermediate) close."""
    k = {
        "t": row[0], "T": row[6], "s": market, "i": "1m", "f": 1, "L": 2,
        "o": row[1], "c": close or row[4], "h": row[2], "l": row[3], "v": row[5], "n": row[8],
        "x": closed, "q": row[7], "V": row[9], "Q": row[10], "B": row[11],
    }  # fmt: skip
    data = {"e": "kline", "E": int(row[6]) + 1, "s": market, "k": k}
    return json.dumps({"stream": f"{market.lower()}@kline_1m", "data": data}, separators=(",", ":"))


# --- the WebSocket server -------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    raw: str


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Drop:
    """Cut the TCP connection without a close frame (a network failure)."""


@dataclass(frozen=True)
class Close:
    """A clean close handshake from the server (code 1001, as at Binance's 24 h cut)."""


@dataclass(frozen=True)
class Hold:
    """Keep the connection open until the client leaves."""


@dataclass(frozen=True)
class Refuse:
    """Answer the handshake with this HTTP status (451: unavailable from this location)."""

    status: int


Step = Send | Pause | Drop | Close | Hold | Refuse


@dataclass
class ScriptedBinance:
    """Each accepted connection plays the next session; after the last one, connections hold."""

    sessions: list[list[Step]]
    #: The server's own keepalive pings (None: none), as Binance pings every 20 s.
    ping_interval: float | None = None
    paths: list[str] = field(default_factory=list)
    handshakes: int = 0
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _next(self) -> list[Step]:
        return self.sessions.pop(0) if self.sessions else [Hold()]

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        self.handshakes += 1
        self.paths.append(request.path)
        if self.sessions and isinstance(self.sessions[0][0], Refuse):
            status = self.sessions.pop(0)[0].status  # type: ignore[union-attr]
            return connection.respond(HTTPStatus(status), "refused by the test venue\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        for step in self._next():
            if isinstance(step, Send):
                await ws.send(step.raw)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Drop):
                ws.transport.abort()
                return
            elif isinstance(step, Close):
                await ws.close(1001, "going away")
                return
            elif isinstance(step, Hold):
                await ws.wait_closed()
                return

    @contextmanager
    def running(self) -> Iterator[ScriptedBinance]:
        ready = threading.Event()
        stop: asyncio.Future[None] | None = None

        async def main() -> None:
            nonlocal stop
            stop = asyncio.get_running_loop().create_future()
            async with serve(
                self._handler,
                "127.0.0.1",
                0,
                process_request=self._process_request,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_interval,
            ) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                ready.set()
                await stop

        loop = asyncio.new_event_loop()
        self._loop = loop
        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
        thread.start()
        assert ready.wait(10), "the local WebSocket server did not start"
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(
                lambda: stop.set_result(None) if stop and not stop.done() else None
            )
            thread.join(10)


# --- the REST venue -----------------------------------------------------------------------------


class KlinesVenue:
    """GET /api/v3/klines from fixed rows, honouring symbol, startTime, endTime and limit."""

    def __init__(self, rows: list[list[Any]], market: str = "BTCUSDT") -> None:
        self.rows = rows
        self.market = market
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        args = request.args.to_dict()
        self.requests.append(args)
        if args.get("symbol") != self.market:
            return Response(json.dumps({"code": -1121, "msg": "Invalid symbol."}), status=400)
        start = int(args.get("startTime", 0))
        end = int(args.get("endTime", 2**62))
        limit = int(args.get("limit", 500))
        picked = [r for r in self.rows if start <= r[0] <= end][:limit]
        return Response(json.dumps(picked), content_type="application/json")


def serve_klines(httpserver: HTTPServer, venue: Callable[[Request], Response]) -> str:
    """Route the venue on the server; returns the base URL to use as stream.rest_url."""
    httpserver.expect_request("/api/v3/klines").respond_with_handler(venue)
    return f"http://{httpserver.host}:{httpserver.port}"


# --- running a consumer ------------------------------------------------------------------------

#: Just after the 10th recorded candle (23:12) closed.
NOW = datetime(2021, 10, 22, 23, 13, 0, 500000, tzinfo=UTC)


def configure_stream(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text("rules: []\n")
    env = {
        "CRYPTO_STREAM__SYMBOLS": '["BTC"]',
        "CRYPTO_STREAM__FALLBACK_WS_URLS": "[]",
        "CRYPTO_STREAM__INITIAL_BACKFILL_MINUTES": "0",
        "CRYPTO_STREAM__BACKOFF_INITIAL_SECONDS": "0.05",
        "CRYPTO_STREAM__BACKOFF_MAX_SECONDS": "0.2",
        "CRYPTO_STREAM__FLUSH_SECONDS": "0.3",
        "CRYPTO_STREAM__HEARTBEAT_SECONDS": "0.5",
        "CRYPTO_SOURCES__EXCHANGE__FALLBACK_HOSTS": "[]",
        "CRYPTO_ALERTS__RULES_FILE": str(rules),
        **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def run_until(
    build: Callable[[], StreamConsumer], done: Callable[[], bool], timeout: float = 30.0
) -> StreamConsumer:
    """Run a consumer until `done()` holds (polled in a thread) or the timeout, then stop it."""
    built: list[StreamConsumer] = []

    async def main() -> None:
        consumer = build()
        built.append(consumer)
        loop = asyncio.get_running_loop()

        async def watch() -> None:
            deadline = loop.time() + timeout
            while loop.time() < deadline and not await asyncio.to_thread(done):
                await asyncio.sleep(0.2)
            consumer.request_stop()

        await asyncio.gather(consumer.run(), watch())

    asyncio.run(main())
    return built[0]


def bronze_candles(url: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            select "timestamp", symbol, interval, open, high, low, close, volume, quote_volume,
                   quote_currency, source_api
            from bronze.raw_crypto_prices where interval = '1m' order by "timestamp"
            """
        ).fetchall()
    columns = ["timestamp", "symbol", "interval", "open", "high", "low", "close", "volume",
               "quote_volume", "quote_currency", "source_api"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def count_rows(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


class SilentPeer:
    """Completes the WebSocket handshake, then never reads or answers again (a peer that died
    without closing: a frozen NAT, a pulled cable). Counts the connections it accepted."""

    def __init__(self) -> None:
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(
                hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            )
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.accepted += 1
            self._sockets.append(conn)  # kept open, never read: pings go unanswered

    def close(self) -> None:
        self._listener.close()
        for conn in self._sockets:
            conn.close()
