"""One bronze.ingestion_audit row per batch: what was asked, what landed, and why it failed.

Why the 'running' row is committed before any work: a batch whose process is killed (OOM, a
worker lost by Airflow) can never write its own failure, so it must already be visible as
running; `expire_stale_running` turns such rows into failures at the start of the next run (plan,
replay, `summary` and the quality gate call it), and the bronze DAG marks its own run's abandoned
batches failed when every load has ended. Everything else (finish, fail, skip) is a single
statement.

Why a reload gets its own row: loading a batch that already landed again (a replay from the lake,
a cleared Airflow task) used to reset the original row's counts, so the audit said 1,500 rows
were inserted while bronze held 181,316. `start_batch` now gives such a reload a new batch id
and a row with `replay_of` pointing at the original; summed over the audit, rows_inserted equals
what bronze holds.

Every text stored here (errors, skip reasons) passes through crypto_analytics.redaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from crypto_analytics.errors import LoadError
from crypto_analytics.ingestion.frames import Dataset
from crypto_analytics.redaction import redact

log = logging.getLogger(__name__)

FinalStatus = Literal["succeeded", "partial"]
#: Statuses of a batch whose work is over: loading its id again is a reload, not a retry.
FINISHED = ("succeeded", "partial", "skipped")

#: Errors longer than this are cut: the audit row is for reading, the log keeps the rest.
MAX_ERROR_CHARS = 4000


def _require_idle(conn: psycopg.Connection, what: str) -> None:
    """Fail loudly instead of silently writing inside someone else's transaction (a savepoint
    would make the 'committed immediately' promise false)."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise LoadError(f"{what} needs a connection outside any transaction")


def start_batch(
    conn: psycopg.Connection,
    *,
    batch_id: uuid.UUID,
    source_api: str,
    dataset: Dataset | str,
    symbols: Sequence[str] = (),
    interval: str | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    lake_paths: Sequence[str] = (),
) -> uuid.UUID:
    """Record the batch as 'running' and commit at once; returns the batch id to load under.

    A batch id seen before is either a retry or a reload. Its earlier attempt did not finish
    (running, failed): the row is reset to running and keeps what that attempt knew (symbols,
    window, lake paths) where this call passes nothing. It finished (succeeded, partial,
    skipped): the reload gets a new id and a row of its own with `replay_of` = the original,
    whose counts stay as they were.
    """
    _require_idle(conn, "audit.start_batch")
    replay_of: uuid.UUID | None = None
    with conn.transaction():
        earlier = conn.execute(
            "select status from bronze.ingestion_audit where batch_id = %s for update",
            (batch_id,),
        ).fetchone()
        if earlier is not None and earlier[0] in FINISHED:
            replay_of, batch_id = batch_id, uuid.uuid4()
        conn.execute(
            """
            insert into bronze.ingestion_audit as a
                (batch_id, source_api, dataset, symbols, interval, window_start, window_end,
                 lake_paths, status, replay_of)
            values (%s, %s, %s, %s, %s, %s, %s, %s, 'running', %s)
            on conflict (batch_id) do update set
                status = 'running',
                error = null,
                finished_at = null,
                started_at = now(),
                rows_fetched = 0, rows_inserted = 0, rows_duplicate = 0, rows_quarantined = 0,
                symbols = case when cardinality(excluded.symbols) > 0
                               then excluded.symbols else a.symbols end,
                interval = coalesce(excluded.interval, a.interval),
                window_start = coalesce(excluded.window_start, a.window_start),
                window_end = coalesce(excluded.window_end, a.window_end),
                lake_paths = case when cardinality(excluded.lake_paths) > 0
                                  then excluded.lake_paths else a.lake_paths end
            """,
            (
                batch_id,
                source_api,
                str(dataset),
                sorted(set(symbols)),
                interval,
                window_start,
                window_end,
                list(lake_paths),
                replay_of,
            ),
        )
    if replay_of is not None:
        log.info("batch %s reloads %s (%s/%s)", batch_id, replay_of, source_api, dataset)
    else:
        log.info("batch %s started: %s/%s", batch_id, source_api, dataset)
    return batch_id


def finish_batch(
    conn: psycopg.Connection,
    batch_id: uuid.UUID,
    *,
    status: FinalStatus,
    rows_fetched: int,
    rows_inserted: int,
    rows_duplicate: int,
    rows_quarantined: int,
) -> None:
    """Write the final counts inside the batch transaction, so they commit with the rows."""
    result = conn.execute(
        """
        update bronze.ingestion_audit set
            status = %s, error = null, finished_at = clock_timestamp(),
            rows_fetched = %s, rows_inserted = %s, rows_duplicate = %s, rows_quarantined = %s
        where batch_id = %s
        """,
        (status, rows_fetched, rows_inserted, rows_duplicate, rows_quarantined, batch_id),
    )
    if result.rowcount != 1:
        raise LoadError(f"batch {batch_id} has no audit row; call audit.start_batch first")


def mark_failed(conn: psycopg.Connection, batch_id: uuid.UUID, error: str) -> None:
    """Mark the batch failed in its own short transaction (the batch's own one rolled back)."""
    _require_idle(conn, "audit.mark_failed")
    with conn.transaction():
        conn.execute(
            """
            update bronze.ingestion_audit set
                status = 'failed', error = %s, finished_at = clock_timestamp(),
                rows_inserted = 0, rows_duplicate = 0, rows_quarantined = 0
            where batch_id = %s
            """,
            (redact(error)[:MAX_ERROR_CHARS], batch_id),
        )
    log.warning("batch %s failed: %s", batch_id, redact(error))


def record_skipped(
    conn: psycopg.Connection,
    *,
    batch_id: uuid.UUID,
    source_api: str,
    dataset: Dataset | str,
    reason: str,
    symbols: Sequence[str] = (),
    interval: str | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> None:
    """Record a batch that was deliberately not fetched (the source lacks the token or dataset)."""
    _require_idle(conn, "audit.record_skipped")
    with conn.transaction():
        conn.execute(
            """
            insert into bronze.ingestion_audit
                (batch_id, source_api, dataset, symbols, interval, window_start, window_end,
                 status, error, finished_at)
            values (%s, %s, %s, %s, %s, %s, %s, 'skipped', %s, now())
            on conflict (batch_id) do update set
                status = 'skipped', error = excluded.error, finished_at = excluded.finished_at
            """,
            (
                batch_id,
                source_api,
                str(dataset),
                sorted(set(symbols)),
                interval,
                window_start,
                window_end,
                redact(reason)[:MAX_ERROR_CHARS],
            ),
        )
    log.info("batch %s skipped (%s/%s): %s", batch_id, source_api, dataset, reason)


def record_failed(
    conn: psycopg.Connection,
    *,
    batch_id: uuid.UUID,
    source_api: str,
    dataset: Dataset | str,
    error: str,
    symbols: Sequence[str] = (),
    interval: str | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    lake_paths: Sequence[str] = (),
) -> uuid.UUID:
    """A batch that failed before any work could start (its lake files are corrupt, one symbol
    of a grouped request failed): its own row, failed. Returns the id it was recorded under."""
    recorded = start_batch(
        conn,
        batch_id=batch_id,
        source_api=source_api,
        dataset=dataset,
        symbols=symbols,
        interval=interval,
        window_start=window_start,
        window_end=window_end,
        lake_paths=lake_paths,
    )
    mark_failed(conn, recorded, error)
    return recorded


def fail_abandoned(
    conn: psycopg.Connection, batch_ids: Sequence[uuid.UUID], reason: str
) -> list[uuid.UUID]:
    """Mark those of these batches still 'running' as failed (their loads are known to have
    ended: the process died); returns their ids."""
    if not batch_ids:
        return []
    _require_idle(conn, "audit.fail_abandoned")
    with conn.transaction():
        rows = conn.execute(
            """
            update bronze.ingestion_audit set
                status = 'failed', finished_at = clock_timestamp(), error = %s
            where status = 'running' and batch_id = any(%s)
            returning batch_id
            """,
            (redact(reason)[:MAX_ERROR_CHARS], list(batch_ids)),
        ).fetchall()
    failed = [row[0] for row in rows]
    if failed:
        log.warning("marked %d abandoned batches failed: %s", len(failed), failed)
    return failed


def expire_stale_running(conn: psycopg.Connection, older_than: timedelta) -> list[uuid.UUID]:
    """Mark 'running' rows started more than `older_than` ago as failed; returns their ids.

    Such rows belong to processes that died without a word (SIGKILL, OOM, a lost worker): their
    transaction rolled back, so the row is the only trace. Pick `older_than` above the longest
    healthy batch, or a live batch will be reported failed.
    """
    if older_than < timedelta(0):
        raise ValueError(f"older_than must not be negative, got {older_than}")
    _require_idle(conn, "audit.expire_stale_running")
    with conn.transaction():
        rows = conn.execute(
            """
            update bronze.ingestion_audit set
                status = 'failed', finished_at = clock_timestamp(),
                error = 'abandoned: still running after ' || %s::interval::text
                        || ' (the loading process died without reporting)'
            where status = 'running' and started_at < clock_timestamp() - %s::interval
            returning batch_id
            """,
            (older_than, older_than),
        ).fetchall()
    expired = [row[0] for row in rows]
    if expired:
        log.warning("expired %d stale running batches: %s", len(expired), expired)
    return expired


def get_batch(conn: psycopg.Connection, batch_id: uuid.UUID) -> dict[str, Any] | None:
    """The audit row of a batch as a dict, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from bronze.ingestion_audit where batch_id = %s", (batch_id,)
        ).fetchone()
