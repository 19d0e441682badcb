"""Incremental state: the newest timestamp landed per (source, dataset, symbol, interval).

Why a table instead of `max(timestamp)` over bronze: the planner asks for every (source, symbol,
interval) on every run, and a tiny keyed table answers that without scanning millions of
candles. It only moves forward (greatest of old and new), so replaying an old batch never makes
the next fetch re-download history, and it moves in the same transaction as the rows it
describes, so a rolled-back batch never leaves it ahead of bronze.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import pandas as pd
import psycopg

from crypto_analytics.ingestion.frames import Dataset

log = logging.getLogger(__name__)

#: Datasets without candles are keyed with this interval.
NO_INTERVAL = ""

#: (symbol, interval) -> last timestamp landed.
Watermarks = dict[tuple[str, str], datetime]


def get_watermark(
    conn: psycopg.Connection,
    source_api: str,
    dataset: Dataset | str,
    symbol: str,
    interval: str | None = NO_INTERVAL,
) -> datetime | None:
    """The newest timestamp landed for one series, or None when nothing has landed yet."""
    row = conn.execute(
        """
        select last_timestamp from bronze.watermarks
        where source_api = %s and dataset = %s and symbol = %s and interval = %s
        """,
        (source_api, str(dataset), symbol, interval or NO_INTERVAL),
    ).fetchone()
    return row[0] if row else None


def get_watermarks(conn: psycopg.Connection, source_api: str, dataset: Dataset | str) -> Watermarks:
    """Every series of one source and dataset: {(symbol, interval): last timestamp}."""
    rows = conn.execute(
        """
        select symbol, interval, last_timestamp from bronze.watermarks
        where source_api = %s and dataset = %s
        """,
        (source_api, str(dataset)),
    ).fetchall()
    return {(symbol, interval): ts for symbol, interval, ts in rows}


def latest_timestamps(frame: pd.DataFrame, dataset: Dataset | str) -> Watermarks:
    """{(symbol, interval): max timestamp} of a normalised frame; interval '' without candles."""
    if frame.empty:
        return {}
    if Dataset(dataset) is Dataset.OHLCV:
        intervals = frame["interval"]
    else:
        intervals = pd.Series(NO_INTERVAL, index=frame.index)
    latest = frame["timestamp"].groupby([frame["symbol"], intervals]).max()
    return {
        (str(symbol), str(interval)): ts.to_pydatetime()
        for (symbol, interval), ts in zip(latest.index.tolist(), latest.tolist(), strict=True)
        if pd.notna(ts)
    }


def advance(
    conn: psycopg.Connection,
    source_api: str,
    dataset: Dataset | str,
    latest: Mapping[tuple[str, str], datetime],
) -> int:
    """Move each series' watermark to greatest(existing, latest); returns how many moved.

    Runs inside the caller's batch transaction. A watermark never moves backwards and its
    updated_at only changes when it moves, so reloading a batch leaves it untouched.
    """
    if not latest:
        return 0
    rows = [
        (source_api, str(dataset), symbol, interval, ts)
        for (symbol, interval), ts in latest.items()
    ]
    with conn.cursor() as cur:
        cur.execute(
            """
            insert into bronze.watermarks as w (source_api, dataset, symbol, interval, last_timestamp)
            select * from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
            on conflict (source_api, dataset, symbol, interval) do update
                set last_timestamp = excluded.last_timestamp, updated_at = now()
                where w.last_timestamp < excluded.last_timestamp
            """,
            [list(column) for column in zip(*rows, strict=True)],
        )
        moved = cur.rowcount
    log.debug("watermarks %s/%s: %d of %d series advanced", source_api, dataset, moved, len(rows))
    return moved
