"""Binance's combined kline stream over `websockets`, surviving what the venue does.

Why `websockets` and not ccxt.pro: we need every text frame byte for byte (the lake keeps them),
the `x` flag that says a candle closed (ccxt's unified OHLCV drops it), and control over each
reconnect (to backfill over REST, to switch host on HTTP 451, to report in the heartbeat);
ccxt.pro hides all three behind its cache and its own reconnection, and loads markets from the
internet first. What `websockets` gives us: it answers the server's pings (Binance pings every
20 s and drops a client that does not pong within a minute) and sends its own, so a dead TCP
connection is noticed within ping_interval + ping_timeout.

What the venue does, and what we do:
- a drop, a refused or timed-out connection: reconnect with capped, jittered exponential backoff
  (never a storm against an unreachable venue), counting failures in the heartbeat;
- the 24-hour limit: we reconnect first, at stream.max_connection_hours;
- `serverShutdown` (the consumer calls reconnect_now): reconnect at once;
- HTTP 451 (geoblocked, e.g. US cloud CI): move to the next URL of stream.fallback_ws_urls, the
  market-data-only host data-stream.binance.vision, and stay there.
After every reconnect the consumer backfills the missed minutes over REST.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from crypto_analytics.config import StreamConfig
from crypto_analytics.errors import ConfigError
from crypto_analytics.streaming.feed import (
    Connected,
    Disconnected,
    FeedEvent,
    Received,
    backoff_delay,
    sleep_or_stop,
)
from crypto_analytics.streaming.subscriptions import Subscription

log = logging.getLogger(__name__)

#: A connection that lasted this long was healthy: the next reconnect starts without delay.
HEALTHY_SECONDS = 10.0
#: Binance allows up to 1024 streams per connection.
MAX_STREAMS = 1024
SOURCE_API = "binance"


class BinanceFeed:
    """Text frames of `<url>/stream?streams=a@kline_1m/b@kline_1m/...`, reconnecting forever."""

    name = "binance"
    source_api = SOURCE_API

    def __init__(
        self,
        config: StreamConfig,
        subscriptions: Sequence[Subscription],
        *,
        rng: random.Random | None = None,
    ) -> None:
        if len(subscriptions) > MAX_STREAMS:
            raise ConfigError(
                f"{len(subscriptions)} streams exceed Binance's {MAX_STREAMS} per connection"
            )
        self.config = config
        self.streams = [s.stream_name(config.interval) for s in subscriptions]
        self.urls = [u.rstrip("/") for u in [config.ws_url, *config.fallback_ws_urls]]
        self._url_index = 0
        self._rng = rng or random.Random()
        self._reconnect = asyncio.Event()
        self._reconnect_reason = ""

    @property
    def url(self) -> str:
        return self.urls[self._url_index]

    @property
    def label(self) -> str:
        return f"{self.url}/stream ({len(self.streams)} streams)"

    def stream_url(self) -> str:
        return f"{self.url}/stream?streams={'/'.join(self.streams)}"

    def reconnect_now(self, reason: str) -> None:
        """Close the current connection and open a new one at once (serverShutdown)."""
        self._reconnect_reason = reason
        self._reconnect.set()

    def _fall_back(self, status: int) -> bool:
        if self._url_index + 1 < len(self.urls):
            blocked = self.url
            self._url_index += 1
            log.warning(
                "%s answered HTTP %d (unavailable from this location); switching to %s",
                blocked,
                status,
                self.url,
            )
            return True
        return False

    async def events(self, stop: asyncio.Event) -> AsyncIterator[FeedEvent]:
        """Connected / Received / Disconnected until `stop` is set."""
        loop = asyncio.get_running_loop()
        failures = 0
        connections = 0
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                url = self.stream_url()
                opened_at: float | None = None
                reason = ""
                try:
                    async with connect(
                        url,
                        open_timeout=self.config.open_timeout_seconds,
                        ping_interval=self.config.ping_interval_seconds,
                        ping_timeout=self.config.ping_timeout_seconds,
                        close_timeout=2,
                        max_size=2**22,
                        max_queue=4096,
                    ) as ws:
                        opened_at = loop.time()
                        connections += 1
                        self._reconnect.clear()
                        log.info("connected to %s", self.label)
                        yield Connected(self.url, reconnect=connections > 1)
                        deadline = opened_at + self.config.max_connection_hours * 3600
                        while True:
                            remaining = deadline - loop.time()
                            if remaining <= 0:
                                reason = (
                                    f"connection age limit ({self.config.max_connection_hours} h, "
                                    "before Binance's 24 h cut)"
                                )
                                break
                            receive = asyncio.ensure_future(ws.recv())
                            asked = asyncio.ensure_future(self._reconnect.wait())
                            done, _ = await asyncio.wait(
                                {receive, stop_waiter, asked},
                                timeout=remaining,
                                return_when=asyncio.FIRST_COMPLETED,
                            )
                            asked.cancel()
                            if receive in done:
                                raw = receive.result()  # ConnectionClosed when it dropped
                                text = (
                                    raw.decode("utf-8", "replace")
                                    if isinstance(raw, bytes)
                                    else raw
                                )
                                yield Received(text, datetime.now(UTC))
                                if self._reconnect.is_set():
                                    reason = self._reconnect_reason
                                    break
                                continue
                            receive.cancel()  # safe: websockets keeps the frame for the next recv
                            if stop.is_set():
                                return
                            if self._reconnect.is_set():
                                reason = self._reconnect_reason
                                break
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    if status == 451 and self._fall_back(status):
                        failures = 0
                        continue
                    reason = f"handshake refused: HTTP {status} from {self.url}"
                except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                except InvalidURI as exc:
                    raise ConfigError(f"stream.ws_url is not a WebSocket URL: {exc}") from None
                if stop.is_set():
                    return
                # A connection that lasted (the 24 h cut, a serverShutdown after hours) is
                # replaced at once; one that failed or died young backs off, so a venue that
                # refuses us, or accepts and drops us, is never hammered.
                lasted = loop.time() - opened_at if opened_at is not None else 0.0
                failures = 0 if lasted >= HEALTHY_SECONDS else failures + 1
                delay = backoff_delay(
                    failures,
                    initial=self.config.backoff_initial_seconds,
                    cap=self.config.backoff_max_seconds,
                    rng=self._rng,
                )
                log.warning("stream disconnected (%s); reconnecting in %.1fs", reason, delay)
                yield Disconnected(reason, delay, failures, self.url)
                if await sleep_or_stop(stop, delay):
                    return
        finally:
            stop_waiter.cancel()
