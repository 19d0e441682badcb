"""Build the stream from the settings and run it in the foreground (`crypto-analytics stream`).

Offline (`ingestion.default_sources` is ["synthetic"], or `stream.feed: synthetic`) the consumer
runs on the synthetic minute feed and backfills from it; otherwise on Binance's combined kline
stream with the REST backfill. SIGTERM and SIGINT stop it cleanly: the pending micro-batch is
flushed and the heartbeat says `stopped`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import ConfigError
from crypto_analytics.streaming.heartbeat import HeartbeatWriter, stream_id
from crypto_analytics.warehouse import database_url

if TYPE_CHECKING:
    from crypto_analytics.streaming.consumer import StreamConsumer

log = logging.getLogger(__name__)

FeedName = Literal["binance", "synthetic"]


def resolve_feed(settings: Settings, requested: str | None = None) -> FeedName:
    """The feed to run: the one asked for, else stream.feed, where `auto` means synthetic when
    the default sources are exactly ["synthetic"] (the documented offline switch)."""
    choice = requested or settings.stream.feed
    if choice == "auto":
        return "synthetic" if settings.ingestion.default_sources == ["synthetic"] else "binance"
    if choice not in ("binance", "synthetic"):
        raise ConfigError(f"unknown feed {choice!r}; choose from: auto, binance, synthetic")
    return choice  # type: ignore[return-value]


def build_consumer(
    settings: Settings | None = None,
    *,
    feed: str | None = None,
    symbols: list[str] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    with_alerts: bool = True,
    heartbeat: HeartbeatWriter | None = None,
) -> StreamConsumer:
    """Everything the consumer needs, from the settings (must run inside an event loop)."""
    from crypto_analytics.alerts.live import LiveAlerts
    from crypto_analytics.streaming.consumer import StreamConsumer
    from crypto_analytics.streaming.sink import CandleSink

    settings = settings or get_settings()
    url = database_url(settings)
    interval = settings.stream.interval
    name = resolve_feed(settings, feed)
    if name == "synthetic":
        from crypto_analytics.streaming.subscriptions import synthetic_subscriptions
        from crypto_analytics.streaming.synthetic_feed import SyntheticFeed, SyntheticMinutes

        subscriptions = synthetic_subscriptions(settings, symbols)
        minutes = SyntheticMinutes(settings, interval)
        the_feed: SyntheticFeed | object = SyntheticFeed(
            minutes, subscriptions, tick_seconds=settings.stream.synthetic_tick_seconds, clock=clock
        )
        backfiller: object = minutes
        source_api = minutes.source_api
    else:
        from crypto_analytics.streaming.backfill import RestBackfiller
        from crypto_analytics.streaming.binance_feed import SOURCE_API, BinanceFeed
        from crypto_analytics.streaming.subscriptions import binance_subscriptions

        subscriptions = binance_subscriptions(settings, symbols)
        the_feed = BinanceFeed(settings.stream, subscriptions)
        backfiller = RestBackfiller(settings, subscriptions, interval)
        source_api = SOURCE_API
    sink = CandleSink(settings, url, source_api=source_api, interval=interval, clock=clock)
    alerts = (
        LiveAlerts(
            settings,
            url,
            source_api=source_api,
            interval=interval,
            where=f"the {name} {interval} stream",
            clock=clock,
        )
        if with_alerts
        else None
    )
    return StreamConsumer(
        settings=settings,
        url=url,
        feed=the_feed,  # type: ignore[arg-type]
        subscriptions=subscriptions,
        sink=sink,
        backfiller=backfiller,  # type: ignore[arg-type]
        heartbeat=heartbeat or HeartbeatWriter(url),
        alerts=alerts,
        clock=clock,
    )


async def _serve(consumer: StreamConsumer) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, consumer.request_stop)
    await consumer.run()


def run_stream(
    settings: Settings | None = None, *, feed: str | None = None, symbols: list[str] | None = None
) -> None:
    """Run the stream in the foreground until SIGTERM/SIGINT."""
    settings = settings or get_settings()
    url = database_url(settings)
    name = resolve_feed(settings, feed)
    # The stream's lock first: a second process for the same stream is refused before it loads
    # pandas, ccxt and the rest.
    writer = HeartbeatWriter(url)
    writer.acquire(stream_id(name, settings.stream.interval))

    async def main() -> None:
        consumer = build_consumer(settings, feed=name, symbols=symbols, heartbeat=writer)
        log.warning(
            "streaming %s %s candles of %s into bronze (stop with Ctrl-C or SIGTERM)",
            consumer.feed.name,
            consumer.interval,
            ", ".join(consumer.by_symbol),
        )
        await _serve(consumer)

    try:
        asyncio.run(main())
    finally:
        writer.close()  # releases the stream's lock whatever happened
