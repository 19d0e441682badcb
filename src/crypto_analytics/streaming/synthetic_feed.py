"""The offline feed: minute candles for every token, sent as Binance kline messages.

Why Binance's message format: with `ingestion.default_sources` set to ["synthetic"] (no internet),
`make up` still runs the real consumer (parser, micro-batches, lake, loader, heartbeat, price
alerts) on a feed that closes a candle per token every minute, so the live page moves. Only the
frames' origin differs; the consumer cannot tell.

Why the candles are the synthetic source's own: that source is one price path across every
interval (its minutes aggregate exactly to its hours and days), so what the stream lands in bronze
agrees with what batch ingestion lands for the same token. The source is a pure function of the
candle number, so any minute is the same whenever it is asked for: the backfill after a restart
lands exactly the candles the live feed would have sent, and reruns are idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from crypto_analytics.config import Settings, Token
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.frames import Dataset, conform, empty_frame
from crypto_analytics.ingestion.sources.base import FetchResult, RawPayload
from crypto_analytics.ingestion.sources.synthetic import QUOTE_CURRENCY as SYNTHETIC_QUOTE
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource
from crypto_analytics.intervals import floor_to_interval, interval_length
from crypto_analytics.streaming.feed import Connected, FeedEvent, Received, sleep_or_stop
from crypto_analytics.streaming.klines import kline_message
from crypto_analytics.streaming.subscriptions import Subscription

log = logging.getLogger(__name__)

SOURCE_API = "synthetic"
HOUR = timedelta(hours=1)
_FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)


class SyntheticMinutes:
    """Deterministic candles of `interval` (a divisor of an hour) for any token and time."""

    source_api = SOURCE_API

    def __init__(self, settings: Settings, interval: str = "1m") -> None:
        step = interval_length(interval)
        if step > HOUR or HOUR % step:
            raise ConfigError(
                f"the synthetic feed makes candles that divide an hour (1m, 5m, 15m, 30m, 1h), "
                f"not {interval!r}"
            )
        self.settings = settings
        self.interval = interval
        self.step = step
        self.per_hour = HOUR // step
        self.seed = settings.sources.synthetic.seed
        # the candle being streamed is not closed yet; the source's model is a pure function of
        # the candle number, so asking with a clock in the far future is exact
        self._source = SyntheticSource(settings, clock=lambda: _FAR_FUTURE)
        self._tokens = {token.symbol: token for token in settings.tokens}
        #: (symbol, hour) -> the hour's candles as arrays (open, high, low, close, volume, qv)
        self._cache: dict[tuple[str, datetime], np.ndarray] = {}

    def _hours(self, token: Token, hours: list[datetime]) -> None:
        """Fill the cache for these hours: one fetch of the source for all the missing ones."""
        missing = [h for h in hours if (token.symbol, h) not in self._cache]
        if not missing:
            return
        frame = self._source.fetch_ohlcv(
            token, self.interval, min(missing), max(missing) + HOUR
        ).frame
        values = frame[["open", "high", "low", "close", "volume", "quote_volume"]].to_numpy()
        hour_of = frame["timestamp"].dt.floor("h")
        for hour in missing:  # an hour before sources.synthetic.start has no candles
            self._cache[(token.symbol, hour)] = values[(hour_of == hour).to_numpy()]
        if len(self._cache) > 20_000:  # a long backfill: keep memory bounded
            for key in list(self._cache)[: len(self._cache) - 10_000]:
                del self._cache[key]

    def candles(self, token: Token, start: datetime, end: datetime) -> pd.DataFrame:
        """Candles with open time in [start, end)."""
        if start >= end:
            return empty_frame(Dataset.OHLCV)
        first = floor_to_interval(start, "1h")
        hours = [first + HOUR * i for i in range(int(-(-(end - first) // HOUR)))]
        self._hours(token, hours)
        parts = [self._cache[(token.symbol, h)] for h in hours]
        values = np.concatenate(parts) if parts else np.empty((0, 6))
        times = [
            h + self.step * i
            for h, part in zip(hours, parts, strict=True)
            for i in range(len(part))
        ]
        frame = pd.DataFrame(
            {
                "timestamp": pd.DatetimeIndex(times, tz=UTC)
                if times
                else pd.DatetimeIndex([], tz=UTC),
                "symbol": token.symbol,
                "interval": self.interval,
                "open": values[:, 0],
                "high": values[:, 1],
                "low": values[:, 2],
                "close": values[:, 3],
                "volume": values[:, 4],
                "quote_volume": values[:, 5],
                "quote_currency": SYNTHETIC_QUOTE,
                "source_api": SOURCE_API,
            }
        )
        inside = (frame["timestamp"] >= start) & (frame["timestamp"] < end)
        return conform(frame[inside], Dataset.OHLCV)

    def candle(self, token: Token, open_time: datetime) -> dict[str, object] | None:
        """One candle's fields (what a kline message carries), from the cache: no frame built."""
        hour = floor_to_interval(open_time, "1h")
        self._hours(token, [hour])
        values = self._cache[(token.symbol, hour)]
        index = (open_time - hour) // self.step
        if index >= len(values):
            return None
        o, h, low, c, v, q = values[index]
        return {
            "timestamp": open_time,
            "open": o,
            "high": h,
            "low": low,
            "close": c,
            "volume": v,
            "quote_volume": q,
        }

    def fetch(self, sub: Subscription, start: datetime, end: datetime) -> FetchResult:
        """A backfill window as a fetch result; its payload holds the kline messages the live
        feed sends for those candles, so the lake looks the same whichever path landed them."""
        frame = self.candles(sub.token, start, end)
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        request = (
            f"synthetic minutes seed={self.seed} symbol={sub.symbol} interval={self.interval} "
            f"start={start.isoformat()} end={end.isoformat()}"
        )
        records: list[dict[Any, Any]] = frame.to_dict("records")
        messages = [
            kline_message(sub, self.interval, record, closed=True, event_time_ms=now_ms)
            for record in records
        ]
        body = json.dumps({"source": "synthetic", "request": request, "messages": messages})
        return FetchResult(SOURCE_API, Dataset.OHLCV, frame, [RawPayload(body.encode(), request)])


class SyntheticFeed:
    """Every `tick` seconds an open-candle update per token; at each candle boundary, the closed
    candle of every token. Never disconnects. `clock`/`sleep` are injectable for tests."""

    name = "synthetic"
    source_api = SOURCE_API

    def __init__(
        self,
        minutes: SyntheticMinutes,
        subscriptions: Sequence[Subscription],
        *,
        tick_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[asyncio.Event, float], Awaitable[bool]] = sleep_or_stop,
    ) -> None:
        self.minutes = minutes
        self.subscriptions = list(subscriptions)
        self.tick = tick_seconds
        self._clock = clock
        self._sleep = sleep

    @property
    def label(self) -> str:
        return f"synthetic {self.minutes.interval} feed ({len(self.subscriptions)} tokens)"

    def reconnect_now(self, reason: str) -> None:
        log.info("synthetic feed: reconnect asked (%s); nothing to reconnect", reason)

    def _messages(self, open_time: datetime, *, closed: bool, now: datetime) -> list[str]:
        """One message per token for the candle opening at open_time; an open candle shows
        its path so far (close interpolated by the elapsed fraction)."""
        event_ms = int(now.timestamp() * 1000)
        out = []
        for sub in self.subscriptions:
            values = self.minutes.candle(sub.token, open_time)
            if values is None:
                continue
            if not closed:
                elapsed = (now - open_time) / self.minutes.step
                fraction = min(1.0, max(0.0, elapsed))
                first = float(values["open"])  # type: ignore[arg-type]
                close = first + fraction * (float(values["close"]) - first)  # type: ignore[arg-type]
                values.update(
                    close=close,
                    high=max(first, close),
                    low=min(first, close),
                    volume=float(values["volume"]) * fraction,  # type: ignore[arg-type]
                    quote_volume=float(values["quote_volume"]) * fraction,  # type: ignore[arg-type]
                )
            out.append(
                kline_message(
                    sub, self.minutes.interval, values, closed=closed, event_time_ms=event_ms
                )
            )
        return out

    async def events(self, stop: asyncio.Event) -> AsyncIterator[FeedEvent]:
        step = self.minutes.step
        yield Connected("synthetic://" + self.minutes.interval, reconnect=False)
        next_close = floor_to_interval(self._clock(), self.minutes.interval) + step
        while not stop.is_set():
            now = self._clock()
            while now >= next_close:  # every candle that closed since the last pass
                for raw in self._messages(next_close - step, closed=True, now=now):
                    yield Received(raw, self._clock())
                next_close += step
            for raw in self._messages(next_close - step, closed=False, now=now):
                yield Received(raw, self._clock())
            wait = min(self.tick, (next_close - self._clock()).total_seconds() + 0.05)
            if await self._sleep(stop, max(0.0, wait)):
                return
