"""Whatever the stream missed, fetched again: gap planning and the two backfill sources.

Why gaps are planned from bronze at start-up and from memory after a reconnect: a restart may
follow hours of downtime, and a hole in the middle (a backfill that never finished before a kill)
is only visible in bronze, so start-up looks at each token's 1m rows over the last
`max_backfill_hours`. While running, the consumer knows the newest candle of each token, so a
reconnect backfills from there to the candle still forming. The Binance backfill is the
platform's own exchange source (ccxt, the raw klines parser, its retries and 451 fallback hosts)
pointed at `stream.rest_url`, with markets built from the universe so it needs no exchangeInfo
download; the offline feed backfills from the same deterministic minutes it streams.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import psycopg

from crypto_analytics.config import Settings
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.frames import BRONZE_TABLE, Dataset
from crypto_analytics.ingestion.sources.base import FetchResult
from crypto_analytics.intervals import floor_to_interval, interval_length
from crypto_analytics.streaming.subscriptions import Subscription

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gap:
    """Missing candles of one token: open times in [start, end)."""

    symbol: str
    start: datetime
    end: datetime

    def candles(self, step: timedelta) -> int:
        return max(0, (self.end - self.start) // step)


def tail_gaps(
    newest: Mapping[str, datetime | None],
    *,
    now: datetime,
    interval: str,
    max_back: timedelta,
    initial_back: timedelta,
) -> list[Gap]:
    """From each token's newest candle (or initial_back ago without one) to the candle still
    forming at `now`, never further back than max_back."""
    step = interval_length(interval)
    forming = floor_to_interval(now, interval)
    floor = forming - max_back
    gaps = []
    for symbol, last in sorted(newest.items()):
        start = last + step if last is not None else forming - initial_back
        start = max(start, floor)
        if start < forming:
            gaps.append(Gap(symbol, start, forming))
    return gaps


def bronze_gaps(
    conn: psycopg.Connection,
    *,
    source_api: str,
    interval: str,
    symbols: Sequence[str],
    now: datetime,
    max_back: timedelta,
    initial_back: timedelta,
) -> tuple[list[Gap], dict[str, datetime | None]]:
    """Holes between a token's candles in the last max_back, plus the tail to now; and each
    token's newest candle (from bronze's watermarks when it is older than max_back)."""
    step = interval_length(interval)
    forming = floor_to_interval(now, interval)
    since = forming - max_back
    table = BRONZE_TABLE[Dataset.OHLCV]
    rows = conn.execute(
        f"""
        select symbol, "timestamp", next_ts from (
            select symbol, "timestamp",
                   lead("timestamp") over (partition by symbol order by "timestamp") as next_ts
            from {table}
            where source_api = %s and interval = %s and symbol = any(%s) and "timestamp" >= %s
        ) t
        where next_ts is null or next_ts > "timestamp" + %s
        """,  # noqa: S608 - table name from frames.BRONZE_TABLE, values bound
        (source_api, interval, list(symbols), since, step),
    ).fetchall()
    marks: dict[str, datetime] = dict(
        conn.execute(
            """
            select symbol, last_timestamp from bronze.watermarks
            where source_api = %s and dataset = 'ohlcv' and interval = %s and symbol = any(%s)
            """,
            (source_api, interval, list(symbols)),
        ).fetchall()
    )
    gaps: list[Gap] = []
    newest: dict[str, datetime | None] = {symbol: marks.get(symbol) for symbol in symbols}
    for symbol, ts, next_ts in rows:
        if next_ts is not None:
            gaps.append(Gap(symbol, ts + step, next_ts))
        else:
            newest[symbol] = max(ts, newest[symbol]) if newest[symbol] else ts
    gaps += tail_gaps(
        newest, now=now, interval=interval, max_back=max_back, initial_back=initial_back
    )
    return sorted(gaps, key=lambda g: (g.symbol, g.start)), newest


class Backfiller(Protocol):
    """Fetches closed candles of one token for a window, as batch ingestion would."""

    source_api: str

    def fetch(self, sub: Subscription, start: datetime, end: datetime) -> FetchResult: ...


def _market(sub: Subscription) -> dict[str, object]:
    """The fields ccxt reads from a Binance spot market, built from the universe."""
    base = sub.market[: -len(sub.quote_currency)]
    return {
        "id": sub.market,
        "symbol": f"{base}/{sub.quote_currency}",
        "base": base,
        "quote": sub.quote_currency,
        "baseId": base,
        "quoteId": sub.quote_currency,
        "type": "spot",
        "spot": True,
        "active": True,
    }


class RestBackfiller:
    """Binance REST klines through the platform's ExchangeSource, on `stream.rest_url`."""

    def __init__(
        self, settings: Settings, subscriptions: Sequence[Subscription], interval: str
    ) -> None:
        from crypto_analytics.ingestion.sources.exchange import ExchangeSource, build_exchange

        exchange_id = settings.sources.exchange.exchange_id
        if exchange_id != "binance":
            raise ConfigError(
                f"the stream backfills from Binance; sources.exchange.exchange_id is {exchange_id!r}"
            )
        exchange = build_exchange("binance", settings)
        exchange.urls["api"]["public"] = settings.stream.rest_url.rstrip("/") + "/api/v3"
        exchange.set_markets([_market(sub) for sub in subscriptions])
        self.source = ExchangeSource(settings, exchange=exchange)
        self.source_api = self.source.source_api
        self.interval = interval
        self._lock = threading.Lock()  # a ccxt exchange is not thread-safe

    def fetch(self, sub: Subscription, start: datetime, end: datetime) -> FetchResult:
        with self._lock:
            return self.source.fetch_ohlcv(sub.token, self.interval, start, end)
