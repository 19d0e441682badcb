"""The stream's heartbeat: one row per stream in stream.heartbeat, plus the newest candle per token.

Why a row and not a log line: the data-health page and the `stale_data` alert rule read it
(through gold.stream_heartbeat), and it must say what a person needs at a glance: connected or
not and to which host, when the last message and the last candle arrived, how late candles land,
how many reconnects, and the last error with when the next attempt is due. It is written every
`stream.heartbeat_seconds` and on every status change, on its own connection, so a slow bronze
load never delays it.

The writer also holds a session advisory lock per stream id: a second `crypto-analytics stream`
for the same feed and interval is refused with the pid and host of the one running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from crypto_analytics.errors import ConfigError
from crypto_analytics.warehouse import connect

log = logging.getLogger(__name__)


@dataclass
class Heartbeat:
    """The stream's state as the heartbeat row shows it (mutated by the consumer)."""

    stream_id: str
    feed: str
    source_api: str
    interval: str
    symbols: list[str]
    started_at: datetime
    status: str = "starting"
    host: str | None = None
    connected_since: datetime | None = None
    last_message_at: datetime | None = None
    last_candle_at: datetime | None = None
    last_landed_at: datetime | None = None
    last_candle_lag_seconds: float | None = None
    messages_received: int = 0
    candles_landed: int = 0
    duplicate_candles: int = 0
    malformed_messages: int = 0
    backfilled_candles: int = 0
    pending_backfills: int = 0
    reconnects: int = 0
    consecutive_failures: int = 0
    next_retry_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    #: symbol -> (newest landed candle open time, its close, when it landed)
    symbol_candles: dict[str, tuple[datetime, float, datetime]] = field(default_factory=dict)

    def error(self, message: str, at: datetime) -> None:
        self.last_error = message[:1000]
        self.last_error_at = at


def stream_id(feed: str, interval: str) -> str:
    return f"{feed}:kline_{interval}"


def _lock_key(sid: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"stream|{sid}".encode(), digest_size=8).digest(), "big", signed=True
    )


_UPSERT = """
insert into stream.heartbeat as h (stream_id, feed, source_api, interval, symbols, status, host,
    pid, hostname, started_at, connected_since, last_message_at, last_candle_at, last_landed_at,
    last_candle_lag_seconds, messages_received, candles_landed, duplicate_candles,
    malformed_messages, backfilled_candles, pending_backfills, reconnects, consecutive_failures,
    next_retry_at, last_error, last_error_at, updated_at)
values (%(stream_id)s, %(feed)s, %(source_api)s, %(interval)s, %(symbols)s, %(status)s, %(host)s,
    %(pid)s, %(hostname)s, %(started_at)s, %(connected_since)s, %(last_message_at)s,
    %(last_candle_at)s, %(last_landed_at)s, %(last_candle_lag_seconds)s, %(messages_received)s,
    %(candles_landed)s, %(duplicate_candles)s, %(malformed_messages)s, %(backfilled_candles)s,
    %(pending_backfills)s, %(reconnects)s, %(consecutive_failures)s, %(next_retry_at)s,
    %(last_error)s, %(last_error_at)s, %(updated_at)s)
on conflict (stream_id) do update set
    feed = excluded.feed, source_api = excluded.source_api, interval = excluded.interval,
    symbols = excluded.symbols, status = excluded.status, host = excluded.host, pid = excluded.pid,
    hostname = excluded.hostname, started_at = excluded.started_at,
    connected_since = excluded.connected_since,
    last_message_at = coalesce(excluded.last_message_at, h.last_message_at),
    last_candle_at = coalesce(excluded.last_candle_at, h.last_candle_at),
    last_landed_at = coalesce(excluded.last_landed_at, h.last_landed_at),
    last_candle_lag_seconds = coalesce(excluded.last_candle_lag_seconds, h.last_candle_lag_seconds),
    messages_received = excluded.messages_received, candles_landed = excluded.candles_landed,
    duplicate_candles = excluded.duplicate_candles,
    malformed_messages = excluded.malformed_messages,
    backfilled_candles = excluded.backfilled_candles,
    pending_backfills = excluded.pending_backfills, reconnects = excluded.reconnects,
    consecutive_failures = excluded.consecutive_failures, next_retry_at = excluded.next_retry_at,
    last_error = excluded.last_error, last_error_at = excluded.last_error_at,
    updated_at = excluded.updated_at
"""

_SYMBOLS = """
insert into stream.symbol_heartbeat as s (stream_id, symbol, last_candle_at, last_close, last_landed_at)
values (%s, %s, %s, %s, %s)
on conflict (stream_id, symbol) do update set
    last_candle_at = greatest(s.last_candle_at, excluded.last_candle_at),
    last_close = case when excluded.last_candle_at >= s.last_candle_at
                      then excluded.last_close else s.last_close end,
    last_landed_at = excluded.last_landed_at
"""


class HeartbeatWriter:
    """Writes one stream's heartbeat on a connection of its own, holding the stream's lock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._sid: str | None = None

    def acquire(self, sid: str) -> None:
        """Take the stream's lock, or ConfigError naming the process that holds it."""
        conn = self._connection()
        self._sid = sid
        row = conn.execute("select pg_try_advisory_lock(%s)", (_lock_key(sid),)).fetchone()
        if row and row[0]:
            return
        holder = conn.execute(
            "select pid, hostname, started_at from stream.heartbeat where stream_id = %s", (sid,)
        ).fetchone()
        who = (
            f"pid {holder[0]} on {holder[1]}, started {holder[2]:%Y-%m-%d %H:%M} UTC"
            if holder
            else "another process"
        )
        raise ConfigError(f"stream {sid} is already running ({who}); stop it first")

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.url, autocommit=True)
            if self._sid is not None:  # a new session: take the lock again
                row = self._conn.execute(
                    "select pg_try_advisory_lock(%s)", (_lock_key(self._sid),)
                ).fetchone()
                if not (row and row[0]):
                    log.error("stream %s: another process took the stream lock", self._sid)
        return self._conn

    def write(
        self,
        beat: Heartbeat,
        symbol_rows: Mapping[str, tuple[datetime, float, datetime]] | None = None,
    ) -> None:
        """Upsert the row (and the given per-token rows) in one transaction."""
        params = {
            key: getattr(beat, key)
            for key in (
                "stream_id",
                "feed",
                "source_api",
                "interval",
                "symbols",
                "status",
                "host",
                "started_at",
                "connected_since",
                "last_message_at",
                "last_candle_at",
                "last_landed_at",
                "last_candle_lag_seconds",
                "messages_received",
                "candles_landed",
                "duplicate_candles",
                "malformed_messages",
                "backfilled_candles",
                "pending_backfills",
                "reconnects",
                "consecutive_failures",
                "next_retry_at",
                "last_error",
                "last_error_at",
            )
        }
        params.update(pid=os.getpid(), hostname=socket.gethostname(), updated_at=datetime.now(UTC))
        conn = self._connection()
        with conn.transaction():
            conn.execute(_UPSERT, params)
            rows = [
                (beat.stream_id, symbol, at, close, landed)
                for symbol, (at, close, landed) in (symbol_rows or {}).items()
            ]
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(_SYMBOLS, rows)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # also releases the session lock
            self._conn = None
