"""Benchmark the real-time stream through a local WebSocket server (`make bench`).

A local server speaks Binance's combined kline stream for all 38 tokens of the universe (candles
from the offline minute generator, sent as Binance messages); the consumer runs in a process of
its own, exactly as `crypto-analytics stream` builds it (feed, micro-batches, lake, validation,
the bronze loader, heartbeat, the stream's price alert rules), against a scratch database created
for the run and dropped afterwards. Two phases:

  1. latency: minutes pass every --minute-seconds (2 s): each token gets an open-candle update,
     then every token's close in one burst, as Binance sends them after a minute ends. Latency of
     a candle = its bronze commit (the audit row's finished_at, clock_timestamp() at commit)
     minus the moment its close message left the server; median and p99 over every candle.
  2. CPU: Binance's real cadence for 38 streams (an update per stream every 2 s, closes once a
     minute) for --cpu-seconds (60 s); the consumer process's CPU time over that wall time.

The server comes from CRYPTO_DATABASE_URL, else the embedded one. Printing is the point here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from websockets.asyncio.server import ServerConnection, serve

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.migrations.runner import init_database
from crypto_analytics.streaming.klines import kline_message
from crypto_analytics.streaming.subscriptions import Subscription
from crypto_analytics.streaming.synthetic_feed import SyntheticMinutes
from crypto_analytics.warehouse import database_url, url_for_database

log = logging.getLogger("bench_stream")

#: Binance pushes a kline update per stream about every 2 seconds.
UPDATE_EVERY_S = 2.0


def all_tokens(settings: Settings) -> list[Subscription]:
    """Every token of the universe as a USDT market (the bench is about load, not listings)."""
    return [Subscription(token, f"{token.symbol}USDT", "USDT") for token in settings.tokens]


class Venue:
    """The local server: plays the script to the first client, records when each close left."""

    def __init__(self, settings: Settings, subs: list[Subscription], start: datetime) -> None:
        self.minutes = SyntheticMinutes(settings)
        self.subs = subs
        self.start = start
        self.sent_at: dict[tuple[str, int], float] = {}
        self.phase_marks: dict[str, float] = {}
        self.connected = threading.Event()
        self.done = threading.Event()
        self.port = 0
        self.plan: list[tuple[str, int, float]] = []  # (phase, minutes, minute seconds)

    def _message(self, sub: Subscription, minute: datetime, closed: bool) -> str:
        values = self.minutes.candle(sub.token, minute)
        assert values is not None
        return kline_message(
            sub, "1m", values, closed=closed, event_time_ms=int(time.time() * 1000)
        )

    async def _play(self, ws: ServerConnection) -> None:
        self.connected.set()
        minute = self.start
        for phase, count, minute_seconds in self.plan:
            self.phase_marks[f"{phase}_start"] = time.monotonic()
            for _ in range(count):
                ticks = max(1, round(minute_seconds / UPDATE_EVERY_S))
                for _ in range(ticks):
                    began = time.monotonic()
                    for sub in self.subs:  # spread over the tick, as 38 streams would be
                        await ws.send(self._message(sub, minute, closed=False))
                        await asyncio.sleep(minute_seconds / ticks / len(self.subs) / 2)
                    await asyncio.sleep(
                        max(0.0, minute_seconds / ticks - (time.monotonic() - began))
                    )
                for sub in self.subs:
                    await ws.send(self._message(sub, minute, closed=True))
                    self.sent_at[(sub.symbol, int(minute.timestamp()))] = time.time()
                minute += timedelta(minutes=1)
            self.phase_marks[f"{phase}_end"] = time.monotonic()
        self.done.set()
        await ws.wait_closed()

    def run(self) -> None:
        ready = threading.Event()

        async def main() -> None:
            async with serve(self._play, "127.0.0.1", 0, max_size=None) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                ready.set()
                await server.serve_forever()

        threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
        assert ready.wait(10)


def consumer_main() -> None:
    """The consumer process: every token, the Binance feed on the bench server."""
    from crypto_analytics.alerts.live import LiveAlerts
    from crypto_analytics.streaming.backfill import RestBackfiller
    from crypto_analytics.streaming.binance_feed import BinanceFeed
    from crypto_analytics.streaming.consumer import StreamConsumer
    from crypto_analytics.streaming.heartbeat import HeartbeatWriter
    from crypto_analytics.streaming.service import _serve
    from crypto_analytics.streaming.sink import CandleSink

    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    url = database_url(settings)
    subs = all_tokens(settings)

    async def main() -> None:
        consumer = StreamConsumer(
            settings=settings,
            url=url,
            feed=BinanceFeed(settings.stream, subs),
            subscriptions=subs,
            sink=CandleSink(settings, url, source_api="binance", interval="1m"),
            backfiller=RestBackfiller(settings, subs, "1m"),
            heartbeat=HeartbeatWriter(url),
            alerts=LiveAlerts(settings, url, source_api="binance", interval="1m", where="bench"),
        )
        await _serve(consumer)

    asyncio.run(main())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=30, help="accelerated minutes (latency)")
    parser.add_argument("--minute-seconds", type=float, default=2.0)
    parser.add_argument("--cpu-seconds", type=float, default=60.0, help="real-cadence phase length")
    parser.add_argument("--consumer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        consumer_main()
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    settings = get_settings()
    subs = all_tokens(settings)
    server = database_url(settings)
    name = f"bench_stream_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = url_for_database(server, name)
    lake = Path(f"/tmp/{name}-lake")
    process = None
    try:
        with psycopg.connect(url) as conn:
            init_database(conn, settings)
        start = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
        venue = Venue(settings, subs, start)
        cpu_minutes = max(1, round(args.cpu_seconds / 60))
        venue.plan = [("latency", args.minutes, args.minute_seconds), ("cpu", cpu_minutes, 60.0)]
        print(f"warming the candle generator for {len(subs)} tokens...", flush=True)
        for sub in subs:
            venue.minutes.candles(
                sub.token, start, start + timedelta(minutes=args.minutes + cpu_minutes + 1)
            )
        venue.run()
        env = {
            **os.environ,
            "CRYPTO_DATABASE_URL": url,
            "CRYPTO_LAKE_DIR": str(lake),
            "CRYPTO_STREAM__WS_URL": f"ws://127.0.0.1:{venue.port}",
            "CRYPTO_STREAM__FALLBACK_WS_URLS": "[]",
            "CRYPTO_STREAM__REST_URL": "http://127.0.0.1:9",
            "CRYPTO_STREAM__INITIAL_BACKFILL_MINUTES": "0",
        }
        process = subprocess.Popen([sys.executable, __file__, "--consumer"], env=env)
        child = psutil.Process(process.pid)
        assert venue.connected.wait(120), "the consumer did not connect"
        while "latency_end" not in venue.phase_marks:
            time.sleep(0.2)
        cpu_at_start = child.cpu_times()
        wall_at_start = time.monotonic()
        assert venue.done.wait(args.cpu_seconds + 120)
        cpu_at_end = child.cpu_times()
        wall = time.monotonic() - wall_at_start
        expected = len(subs) * (args.minutes + cpu_minutes)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(url) as conn:
                (landed,) = conn.execute("select count(*) from bronze.raw_crypto_prices").fetchone()
            if landed >= expected:
                break
            time.sleep(0.2)
        process.terminate()
        process.wait(30)

        with psycopg.connect(url) as conn:
            rows = conn.execute(
                """
                select p.symbol, extract(epoch from p."timestamp")::bigint,
                       extract(epoch from a.finished_at)
                from bronze.raw_crypto_prices p
                join bronze.ingestion_audit a on a.batch_id = p._batch_id
                """
            ).fetchall()
            batches = conn.execute(
                "select count(*) from bronze.ingestion_audit where source_api = 'binance'"
            ).fetchone()
        latency_end = int((start + timedelta(minutes=args.minutes)).timestamp())
        latencies = [
            float(committed) - venue.sent_at[(symbol, minute)]
            for symbol, minute, committed in rows
            if minute < latency_end and (symbol, minute) in venue.sent_at
        ]
        cpu = (cpu_at_end.user - cpu_at_start.user) + (cpu_at_end.system - cpu_at_start.system)
        print(
            f"{len(subs)} tokens, {len(rows):,} candles landed of {expected:,} sent, "
            f"{batches[0] if batches else 0} batches"
        )
        print(
            f"candle close -> bronze commit ({len(latencies):,} candles, "
            f"{args.minutes} minutes every {args.minute_seconds:g} s): "
            f"median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
        rate = len(subs) / UPDATE_EVERY_S
        print(
            f"consumer CPU at Binance's cadence ({rate:.0f} msg/s, closes once a minute, "
            f"{wall:.0f} s): {cpu:.2f} CPU s = {cpu / wall:.1%} of one core"
        )
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
        subprocess.run(["rm", "-rf", str(lake)], check=False)


if __name__ == "__main__":
    main()
