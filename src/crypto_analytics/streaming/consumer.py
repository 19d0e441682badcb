"""The stream consumer: feed events in, closed candles to bronze, gaps backfilled, heartbeat out.

One asyncio loop reads the feed and never blocks on the warehouse: micro-batches, backfills,
heartbeats and alert passes run in worker threads (psycopg and ccxt are synchronous), each in its
own task, so pings are answered and messages keep flowing while a batch lands.

Nothing is lost on the way:
- a batch that fails to land goes back to the batcher and is retried (and its rows are idempotent);
- a candle whose predecessor never arrived opens a gap, and every reconnect opens a gap from each
  token's newest candle to the one still forming; gaps are fetched over REST (or regenerated
  offline) by one worker that retries with backoff until they land;
- start-up finds the holes and the tail in bronze itself;
- `request_stop()` (SIGTERM/SIGINT) ends the feed, flushes the pending batch, and writes the
  heartbeat as `stopped`; a gap still unfilled is found in bronze by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from crypto_analytics.alerts.live import LiveAlerts
from crypto_analytics.config import Settings
from crypto_analytics.intervals import interval_length
from crypto_analytics.streaming.backfill import Backfiller, Gap, bronze_gaps, tail_gaps
from crypto_analytics.streaming.batcher import MicroBatcher
from crypto_analytics.streaming.feed import (
    Connected,
    Disconnected,
    Feed,
    Received,
    backoff_delay,
    sleep_or_stop,
    wait_event,
)
from crypto_analytics.streaming.heartbeat import Heartbeat, HeartbeatWriter, stream_id
from crypto_analytics.streaming.klines import (
    Ignored,
    Kline,
    MalformedMessage,
    ServerShutdown,
    parse_message,
)
from crypto_analytics.streaming.sink import CandleSink, Landed
from crypto_analytics.streaming.subscriptions import Subscription
from crypto_analytics.warehouse import connect

log = logging.getLogger(__name__)

#: Disconnections in a row after which the heartbeat says `unreachable` instead of `reconnecting`.
UNREACHABLE_AFTER = 3
#: A failed landing or backfill waits this long before its first retry (doubling, capped).
RETRY_INITIAL_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


class StreamConsumer:
    """Runs one feed until stopped. Build it with crypto_analytics.streaming.service."""

    def __init__(
        self,
        *,
        settings: Settings,
        url: str,
        feed: Feed,
        subscriptions: Sequence[Subscription],
        sink: CandleSink,
        backfiller: Backfiller,
        heartbeat: HeartbeatWriter | None,
        alerts: LiveAlerts | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.config = settings.stream
        self.url = url
        self.feed = feed
        self.interval = self.config.interval
        self.step = interval_length(self.interval)
        self.subscriptions = list(subscriptions)
        self.by_market = {s.market: s for s in self.subscriptions}
        self.by_symbol = {s.symbol: s for s in self.subscriptions}
        self.sink = sink
        self.backfiller = backfiller
        self.writer = heartbeat
        self.alerts = alerts
        self._clock = clock
        self.batcher = MicroBatcher(
            markets=self.by_market,
            batch_size=self.config.batch_size,
            flush_seconds=self.config.flush_seconds,
        )
        self.received: dict[tuple[str, int], datetime] = {}
        self.malformed: list[tuple[str, datetime, str]] = []
        #: Each token's newest candle landed, pending, or covered by a queued backfill.
        self.newest: dict[str, datetime | None] = {s.symbol: None for s in self.subscriptions}
        now = clock()
        self.beat = Heartbeat(
            stream_id=stream_id(feed.name, self.interval),
            feed=feed.name,
            source_api=feed.source_api,
            interval=self.interval,
            symbols=[s.symbol for s in self.subscriptions],
            started_at=now,
        )
        self.stop = asyncio.Event()
        self._kick = asyncio.Event()
        self._beat_now = asyncio.Event()
        self._gaps: asyncio.Queue[Gap] = asyncio.Queue()
        self._symbol_updates: dict[str, tuple[datetime, float, datetime]] = {}

    # --- control -------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish cleanly: end the feed, flush what is pending, mark the heartbeat stopped."""
        if not self.stop.is_set():
            log.info("stream: stop requested; flushing %d pending candle(s)", len(self.batcher))
        self.stop.set()
        self._kick.set()
        self._beat_now.set()

    async def run(self) -> None:
        """Start-up backfill from bronze, then the feed until `request_stop()`."""
        if self.writer is not None:
            await asyncio.to_thread(self.writer.acquire, self.beat.stream_id)
        await self._write_heartbeat()
        await self._plan_startup()
        if self.alerts is not None:
            await self._in_thread("seed the price windows", self.alerts.seed, list(self.by_symbol))
        workers = [
            asyncio.create_task(self._flusher(), name="flusher"),
            asyncio.create_task(self._backfill_worker(), name="backfill"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
        ]
        if self.alerts is not None:
            workers.append(asyncio.create_task(self._delivery_loop(), name="deliveries"))
        try:
            self.beat.status = "connecting"
            async for event in self.feed.events(self.stop):
                if isinstance(event, Received):
                    self._on_message(event)
                elif isinstance(event, Connected):
                    self._on_connected(event)
                elif isinstance(event, Disconnected):
                    self._on_disconnected(event)
        finally:
            self.stop.set()
            self._kick.set()
            flusher = workers[0]
            with contextlib.suppress(Exception):
                await flusher  # drains the batcher, then returns
            for task in workers[1:]:
                task.cancel()
            # bounded: a worker blocked in a thread (a slow REST retry) must not hold the exit
            await asyncio.wait(workers[1:], timeout=5)
            self.beat.status = "stopped"
            self.beat.connected_since = None
            self.beat.pending_backfills = self._gaps.qsize()
            await self._write_heartbeat()
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        self.sink.close()
        if self.alerts is not None:
            self.alerts.close()
        if self.writer is not None:
            self.writer.close()

    async def _in_thread(self, what: str, fn: Callable[..., object], *args: object) -> object:
        """Run blocking work in a thread; log (and record) a failure instead of raising."""
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception as exc:  # noqa: BLE001 - the stream outlives any one failure
            log.exception("stream: could not %s", what)
            self.beat.error(f"{what}: {type(exc).__name__}: {exc}", self._clock())
            return None

    # --- feed events ---------------------------------------------------------------------------

    def _on_connected(self, event: Connected) -> None:
        now = self._clock()
        self.beat.status = "connected"
        self.beat.host = event.url
        self.beat.connected_since = now
        self.beat.consecutive_failures = 0
        self.beat.next_retry_at = None
        if event.reconnect:
            self.beat.reconnects += 1
            gaps = tail_gaps(
                self.newest,
                now=now,
                interval=self.interval,
                max_back=timedelta(hours=self.config.max_backfill_hours),
                initial_back=timedelta(minutes=self.config.initial_backfill_minutes),
            )
            self._queue(gaps)
            log.info("stream: reconnected to %s; backfilling %d gap(s)", event.url, len(gaps))
        self._beat_now.set()

    def _on_disconnected(self, event: Disconnected) -> None:
        now = self._clock()
        self.beat.status = "unreachable" if event.failures >= UNREACHABLE_AFTER else "reconnecting"
        self.beat.connected_since = None
        self.beat.consecutive_failures = event.failures
        self.beat.next_retry_at = now + timedelta(seconds=event.retry_in)
        self.beat.host = event.next_url
        self.beat.error(event.reason, now)
        self._beat_now.set()

    def _on_message(self, event: Received) -> None:
        self.beat.messages_received += 1
        self.beat.last_message_at = event.received_at
        try:
            parsed = parse_message(event.raw)
        except MalformedMessage as exc:
            self.beat.malformed_messages += 1
            self.malformed.append((event.raw, event.received_at, str(exc)))
            log.warning("stream: malformed message skipped: %s", exc)
            return
        if isinstance(parsed, ServerShutdown):
            log.warning("stream: serverShutdown notice; reconnecting now")
            self.feed.reconnect_now("serverShutdown notice from the server")
            return
        if isinstance(parsed, Ignored):
            return
        self._on_kline(parsed, event.received_at)

    def _on_kline(self, kline: Kline, received_at: datetime) -> None:
        sub = self.by_market.get(kline.market)
        if sub is None or kline.interval != self.interval or not kline.closed:
            return  # another market, or a candle still forming: never persisted
        open_time = datetime.fromtimestamp(kline.open_time_ms / 1000, tz=UTC)
        last = self.newest.get(sub.symbol)
        if last is not None and open_time > last + self.step:
            self._queue([Gap(sub.symbol, last + self.step, open_time)])
        if last is None or open_time > last:
            self.newest[sub.symbol] = open_time
        if self.batcher.add(kline):
            self.received[kline.key] = received_at
        if self.batcher.due():
            self._kick.set()

    def _queue(self, gaps: Sequence[Gap]) -> None:
        for gap in gaps:
            log.info("stream: gap %s [%s, %s) queued for backfill", gap.symbol, gap.start, gap.end)
            self._gaps.put_nowait(gap)
            last = self.newest.get(gap.symbol)
            covered = gap.end - self.step
            if last is None or covered > last:
                self.newest[gap.symbol] = covered
        self.beat.pending_backfills = self._gaps.qsize()

    async def _plan_startup(self) -> None:
        def plan() -> tuple[list[Gap], dict[str, datetime | None]]:
            with connect(self.url, autocommit=True) as conn:
                return bronze_gaps(
                    conn,
                    source_api=self.feed.source_api,
                    interval=self.interval,
                    symbols=list(self.by_symbol),
                    now=self._clock(),
                    max_back=timedelta(hours=self.config.max_backfill_hours),
                    initial_back=timedelta(minutes=self.config.initial_backfill_minutes),
                )

        planned = await self._in_thread("find gaps in bronze", plan)
        if not isinstance(planned, tuple):
            return
        gaps, newest = planned
        self.newest.update(newest)
        self._queue(gaps)

    # --- landing -------------------------------------------------------------------------------

    async def _flusher(self) -> None:
        """Flush whenever the batch is due; after stop, flush what is left and return."""
        failures = 0
        while True:
            if not self.stop.is_set():  # once stopping, drain without waiting for a kick
                await wait_event(self._kick, self.batcher.seconds_until_due())
                self._kick.clear()
            stopping = self.stop.is_set()
            if len(self.batcher) and (self.batcher.due() or stopping):
                if await self._flush_once():
                    failures = 0
                else:
                    failures += 1
                    if stopping and failures >= 3:
                        log.error(
                            "stream: %d candle(s) could not be landed before exit; the next "
                            "start backfills them",
                            len(self.batcher),
                        )
                        return
                    delay = backoff_delay(
                        failures, initial=RETRY_INITIAL_SECONDS, cap=RETRY_MAX_SECONDS
                    )
                    await asyncio.sleep(min(delay, 2.0) if stopping else delay)
                    self._kick.set()
                continue
            if stopping and not len(self.batcher):
                return

    async def _flush_once(self) -> bool:
        klines = self.batcher.take()
        received = {k.key: self.received.pop(k.key) for k in klines if k.key in self.received}
        malformed, self.malformed = self.malformed, []
        try:
            landed = await asyncio.to_thread(
                self.sink.write_klines,
                klines,
                self.by_market,
                received,
                self.feed.label,
                malformed,
            )
        except Exception as exc:  # noqa: BLE001 - the batch is kept and retried
            log.error("stream: %d candle(s) not landed, will retry: %s", len(klines), exc)
            self.beat.error(f"landing a batch: {exc}", self._clock())
            self.batcher.restore(klines)
            self.received.update(received)
            self.malformed[:0] = malformed
            self._beat_now.set()
            return False
        self.beat.duplicate_candles = self.batcher.duplicates + landed.report.rows_duplicate
        self._account(landed, backfilled=False)
        if self.alerts is not None:
            await self._in_thread("evaluate the stream's price rules", self._alerts_pass, landed)
        return True

    def _account(self, landed: Landed, *, backfilled: bool) -> None:
        report = landed.report
        if backfilled:
            self.beat.backfilled_candles += report.rows_inserted
        self.beat.candles_landed += report.rows_inserted
        if not landed.newest:
            return
        newest_open = max(at for at, _ in landed.newest.values())
        if self.beat.last_candle_at is None or newest_open >= self.beat.last_candle_at:
            self.beat.last_candle_at = newest_open
            self.beat.last_landed_at = landed.landed_at
            if not backfilled:
                lag = (landed.landed_at - (newest_open + self.step)).total_seconds()
                self.beat.last_candle_lag_seconds = lag
        for symbol, (at, close) in landed.newest.items():
            current = self._symbol_updates.get(symbol)
            if current is None or at >= current[0]:
                self._symbol_updates[symbol] = (at, close, landed.landed_at)

    def _alerts_pass(self, landed: Landed) -> None:
        assert self.alerts is not None
        self.alerts.remember(landed.frame)
        result = self.alerts.evaluate()
        if result.notified:
            self.alerts.deliver()

    # --- backfill ------------------------------------------------------------------------------

    async def _backfill_worker(self) -> None:
        failures = 0
        while not self.stop.is_set():
            gap = await self._gaps.get()
            sub = self.by_symbol.get(gap.symbol)
            if sub is None:
                continue
            try:
                result = await asyncio.to_thread(self.backfiller.fetch, sub, gap.start, gap.end)
                landed = await asyncio.to_thread(
                    self.sink.write,
                    result,
                    {
                        "feed": "backfill",
                        "symbol": gap.symbol,
                        "gap_start": gap.start,
                        "gap_end": gap.end,
                    },
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried until it lands
                failures += 1
                delay = backoff_delay(
                    failures, initial=RETRY_INITIAL_SECONDS, cap=RETRY_MAX_SECONDS
                )
                log.warning(
                    "stream: backfill %s [%s, %s) failed (%s); retrying in %.0fs",
                    gap.symbol,
                    gap.start,
                    gap.end,
                    exc,
                    delay,
                )
                self.beat.error(f"backfill {gap.symbol}: {exc}", self._clock())
                self._gaps.put_nowait(gap)
                self.beat.pending_backfills = self._gaps.qsize()
                self._beat_now.set()
                if await sleep_or_stop(self.stop, delay):
                    return
                continue
            failures = 0
            self.beat.pending_backfills = self._gaps.qsize()
            log.info(
                "stream: backfilled %s [%s, %s): %d new, %d already there",
                gap.symbol,
                gap.start,
                gap.end,
                landed.report.rows_inserted,
                landed.report.rows_duplicate,
            )
            self._account(landed, backfilled=True)
            if self.alerts is not None:
                self.alerts.remember(landed.frame)
            self._beat_now.set()

    # --- heartbeat and deliveries ---------------------------------------------------------------

    async def _write_heartbeat(self) -> None:
        if self.writer is None:
            return
        updates, self._symbol_updates = self._symbol_updates, {}
        try:
            await asyncio.to_thread(self.writer.write, self.beat, updates)
        except Exception as exc:  # noqa: BLE001 - the heartbeat is retried on the next beat
            log.warning("stream: heartbeat not written: %s", exc)
            for symbol, value in updates.items():
                self._symbol_updates.setdefault(symbol, value)

    async def _heartbeat_loop(self) -> None:
        while not self.stop.is_set():
            await wait_event(self._beat_now, self.config.heartbeat_seconds)
            self._beat_now.clear()
            if not self.stop.is_set():  # the final beat is written by run()
                await self._write_heartbeat()

    async def _delivery_loop(self) -> None:
        assert self.alerts is not None
        while not self.stop.is_set():
            await self._in_thread("deliver pending notifications", self.alerts.deliver)
            if await sleep_or_stop(self.stop, self.settings.alerts.stream_delivery_seconds):
                return
