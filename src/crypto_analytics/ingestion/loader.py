"""Land validated frames in bronze: binary COPY, an idempotent insert, one transaction per batch.

Why staging + `insert … on conflict do nothing` rather than a plain COPY into bronze: COPY
cannot skip rows that already exist, and sources overlap (a rerun, a retried Airflow task, a
replay from the lake, two windows that share a candle). The first copy of a row wins and keeps
its lineage (_batch_id, _ingested_at); later copies are counted as duplicates, so reloading a
batch any number of times changes nothing but the counts. When a cheap probe proves the batch
cannot meet an existing key (new candles past the watermark), the rows are copied straight into
bronze instead, guarded by a savepoint (see copy_into_bronze).

Why one transaction per batch: quarantine, bronze rows, watermarks and the audit counts either
all commit or none do, so a killed load never leaves half a batch or a watermark ahead of the
rows, and the rerun lands exactly what was missing.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from crypto_analytics.errors import LoadError
from crypto_analytics.ingestion import audit, quarantine, watermarks
from crypto_analytics.ingestion.frames import BRONZE_TABLE, COLUMNS, NATURAL_KEY, Dataset
from crypto_analytics.ingestion.pgcopy import encode_frame
from crypto_analytics.ingestion.reports import BatchReport

log = logging.getLogger(__name__)

BATCH_ID_COLUMN = "_batch_id"
INGESTED_AT_COLUMN = "_ingested_at"


@dataclass(frozen=True)
class LoadCounts:
    """Rows sent by COPY, new rows inserted into bronze, rows bronze already had, and the path.

    path is "direct" when the batch could not conflict and was copied straight into bronze,
    "staged" when it went through the staging table and `on conflict do nothing`.
    """

    staged: int
    inserted: int
    duplicate: int
    path: Literal["direct", "staged", "empty"] = "staged"


def _split_table(table: str) -> tuple[str, str]:
    schema, _, name = table.partition(".")
    return schema, name


def bronze_column_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """{column: type} of a table from the catalog.

    Binary COPY must send each value in exactly the column's type, so the encoder follows the
    live table rather than a second copy of the migration kept in Python.
    """
    rows = conn.execute(
        """
        select a.attname, format_type(a.atttypid, null)
        from pg_attribute a
        where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
        order by a.attnum
        """,
        (table,),
    ).fetchall()
    if not rows:
        raise LoadError(f"table {table} does not exist; run `crypto-analytics db init`")
    return dict(rows)


def _require_transaction(conn: psycopg.Connection) -> None:
    status = conn.info.transaction_status
    if status == TransactionStatus.INTRANS:
        return
    if status == TransactionStatus.IDLE and not conn.autocommit:
        return  # the next statement opens the caller's transaction
    raise LoadError(
        "copy_into_bronze must run inside the caller's transaction "
        f"(connection status {status.name}); use `with conn.transaction():`"
    )


@dataclass(frozen=True)
class KeyOrder:
    """A frame in natural-key order and the time span of each series (key minus timestamp)."""

    frame: pd.DataFrame
    series: pd.DataFrame  # one row per series: its key columns, lo and hi timestamps


def order_by_key(frame: pd.DataFrame, key: list[str]) -> KeyOrder:
    """Sort by the natural key (texts by code point); a frame already in order is not copied.

    Why: rows arriving in index order append at the right edge of the primary-key btree
    instead of descending it at random, measured at 2.5 s vs 4.4 s of server CPU for a
    direct COPY of 1M candles. The series spans come free from the sorted runs.
    """
    if key[-1] != "timestamp":
        raise LoadError(f"natural key {key} must end with timestamp")
    series_columns = key[:-1]
    codes = [pd.factorize(frame[c], sort=True)[0] for c in series_columns]
    stamps = frame["timestamp"].array.asi8
    order = np.lexsort([stamps, *reversed(codes)])  # the last array is the primary key
    in_order = bool((np.diff(order) > 0).all())
    ordered = frame if in_order else frame.take(order)
    sorted_codes = np.column_stack([c[order] for c in codes])
    starts = np.concatenate(
        [[0], np.flatnonzero((np.diff(sorted_codes, axis=0) != 0).any(axis=1)) + 1]
    )
    ends = np.append(starts[1:], len(ordered)) - 1
    series = ordered[series_columns].iloc[starts].reset_index(drop=True)
    series["lo"] = ordered["timestamp"].iloc[starts].to_numpy()
    series["hi"] = ordered["timestamp"].iloc[ends].to_numpy()
    return KeyOrder(ordered, series)


def _series_overlap(
    conn: psycopg.Connection, table: str, key: list[str], series: pd.DataFrame
) -> bool:
    """Whether bronze already holds a row inside the batch's time span of any of its series.

    One primary-key range probe per series (symbol x interval), so it costs milliseconds
    however large the batch. False means a plain COPY cannot hit a committed key.
    """
    series_columns = key[:-1]
    arrays: list[list[Any]] = [series[c].astype(str).tolist() for c in series_columns]
    arrays += [[ts.to_pydatetime() for ts in series[bound]] for bound in ("lo", "hi")]
    names = [*series_columns, "lo", "hi"]
    casts = ["text[]"] * len(series_columns) + ["timestamptz[]", "timestamptz[]"]
    query = sql.SQL(
        "select exists (select 1 from unnest({params}) as s({names}) "
        "where exists (select 1 from {table} t where {match} "
        'and t."timestamp" between s.lo and s.hi))'
    ).format(
        params=sql.SQL(", ").join(sql.SQL("%s::" + cast) for cast in casts),
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        table=sql.Identifier(*_split_table(table)),
        match=sql.SQL(" and ").join(
            sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in series_columns
        ),
    )
    row = conn.execute(query, arrays).fetchone()
    return bool(row and row[0])


def _copy(
    cur: psycopg.Cursor,
    target: sql.Composable,
    frame: pd.DataFrame,
    columns: list[str],
    types: dict[str, str],
    batch_id: uuid.UUID,
) -> int:
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    statement = sql.SQL("copy {} ({}) from stdin (format binary)").format(target, column_list)
    with cur.copy(statement) as copy:
        for chunk in encode_frame(
            frame, [(c, types[c]) for c in columns], constants={BATCH_ID_COLUMN: batch_id}
        ):
            copy.write(chunk)
    return cur.rowcount


def copy_into_bronze(
    conn: psycopg.Connection, dataset: Dataset | str, frame: pd.DataFrame, batch_id: uuid.UUID
) -> LoadCounts:
    """Land a validated frame in bronze, skipping rows whose natural key is already there.

    Runs in the caller's transaction and commits nothing. `_batch_id` is this batch on every
    row; `_ingested_at` is the column default now(), one value for the whole transaction.

    Two paths, same result. Normally: binary COPY into a temp staging table without indexes,
    then one `insert … select … on conflict do nothing`. Fast path: when a probe shows bronze
    has no row in the batch's span of any series (new candles past the watermark, the common
    case), COPY straight into bronze inside a savepoint; that skips the staging copy and the
    speculative-insert work of ON CONFLICT (about twice the throughput). If a concurrent
    loader lands the same keys meanwhile, or the frame repeats a key, the COPY fails on the
    primary key, the savepoint is rolled back and the staged path runs.
    """
    dataset = Dataset(dataset)
    if frame.empty:
        return LoadCounts(0, 0, 0, "empty")
    _require_transaction(conn)
    table = BRONZE_TABLE[dataset]
    key = NATURAL_KEY[dataset]
    columns = [*COLUMNS[dataset], BATCH_ID_COLUMN]
    types = bronze_column_types(conn, table)
    absent = [c for c in columns if c not in types]
    if absent:
        raise LoadError(f"{table} has no column(s) {', '.join(absent)}; migrations are behind")
    target = sql.Identifier(*_split_table(table))
    keyed = order_by_key(frame, key)
    ordered = keyed.frame

    started = time.perf_counter()
    if not _series_overlap(conn, table, key, keyed.series):
        try:
            with conn.transaction(), conn.cursor() as cur:
                copied = _copy(cur, target, ordered, columns, types, batch_id)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
            log.info("%s: direct COPY hit an existing key (%s); using staging", table, exc.sqlstate)
        else:
            if copied != len(frame):
                raise LoadError(f"COPY wrote {copied} rows of {len(frame)} into {table}")
            log.info(
                "%s: copied %d new rows directly in %.2fs",
                table,
                copied,
                time.perf_counter() - started,
            )
            return LoadCounts(staged=copied, inserted=copied, duplicate=0, path="direct")

    stage = sql.Identifier(f"stage_{dataset}_{uuid.uuid4().hex[:12]}")
    all_columns = sql.SQL(", ").join(map(sql.Identifier, [*columns, INGESTED_AT_COLUMN]))
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("create temp table {} (like {} including defaults) on commit drop").format(
                stage, target
            )
        )
        staged = _copy(cur, stage, ordered, columns, types, batch_id)
        copied_at = time.perf_counter()
        # No ORDER BY: the rows were copied in key order and a fresh temp table scans in
        # insertion order, so PostgreSQL need not sort them again.
        cur.execute(
            sql.SQL(
                "insert into {target} ({cols}) select {cols} from {stage} "
                "on conflict ({key}) do nothing"
            ).format(
                target=target,
                cols=all_columns,
                stage=stage,
                key=sql.SQL(", ").join(map(sql.Identifier, key)),
            )
        )
        inserted = cur.rowcount
        cur.execute(sql.SQL("drop table {}").format(stage))
    if staged != len(frame):
        raise LoadError(f"COPY staged {staged} rows of {len(frame)} for {table}")
    log.info(
        "%s: staged %d rows in %.2fs, inserted %d (%d duplicate) in %.2fs",
        table,
        staged,
        copied_at - started,
        inserted,
        staged - inserted,
        time.perf_counter() - copied_at,
    )
    return LoadCounts(staged=staged, inserted=inserted, duplicate=staged - inserted)


def _check_valid(
    frame: pd.DataFrame, dataset: Dataset, source_api: str, interval: str | None
) -> None:
    """Refuse frames that would land under the wrong lineage (and key watermarks wrongly)."""
    missing = [c for c in COLUMNS[dataset] if c not in frame.columns]
    if missing:
        raise LoadError(f"valid rows are missing columns: {', '.join(missing)}")
    if frame.empty:
        return
    sources = {str(v) for v in frame["source_api"].dropna().unique()}
    if sources != {source_api}:
        raise LoadError(f"valid rows carry source_api {sorted(sources)}, batch is {source_api!r}")
    if dataset is Dataset.OHLCV:
        intervals = {str(v) for v in frame["interval"].dropna().unique()}
        if intervals != {interval}:
            raise LoadError(f"valid rows carry interval {sorted(intervals)}, batch is {interval!r}")


def _symbols(*frames: pd.DataFrame) -> list[str]:
    found: set[str] = set()
    for frame in frames:
        if "symbol" in frame.columns:
            found.update(str(v) for v in frame["symbol"].dropna().unique())
    return sorted(found)


def load_batch(
    conn: psycopg.Connection,
    *,
    batch_id: uuid.UUID,
    source_api: str,
    dataset: Dataset | str,
    interval: str | None,
    valid: pd.DataFrame,
    rejected: pd.DataFrame | None,
    raw_payload_path: str | None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> BatchReport:
    """Quarantine, load, advance watermarks and finish the audit row in ONE transaction.

    `conn` must not be inside a transaction (open it with autocommit=True): the 'running' audit
    row commits first and, on failure, the 'failed' mark commits after the rollback. Raises
    LoadError (with the cause chained) when anything fails; then nothing of the batch is in
    bronze, quarantine or watermarks.

    Loading a batch id that already landed is a reload: it is audited (and its new rows are
    stamped) under a new batch id with `replay_of` = this one (see audit.start_batch), so the
    original audit row stays true; the report says which.
    """
    dataset = Dataset(dataset)
    if dataset is not Dataset.OHLCV:
        interval = None
    rejected = (
        rejected if rejected is not None else pd.DataFrame(columns=[*COLUMNS[dataset], "reason"])
    )
    original = batch_id
    try:
        batch_id = audit.start_batch(
            conn,
            batch_id=batch_id,
            source_api=source_api,
            dataset=dataset,
            symbols=_symbols(valid, rejected),
            interval=interval,
            window_start=window_start,
            window_end=window_end,
            lake_paths=[raw_payload_path] if raw_payload_path else [],
        )
    except psycopg.Error as exc:
        raise LoadError(f"batch {batch_id}: could not record its start: {exc}") from exc
    try:
        _check_valid(valid, dataset, source_api, interval)
        with conn.transaction():
            quarantined = quarantine.quarantine_rows(
                conn,
                batch_id=batch_id,
                source_api=source_api,
                dataset=dataset,
                rejected=rejected,
                raw_payload_path=raw_payload_path,
            )
            counts = copy_into_bronze(conn, dataset, valid, batch_id)
            watermarks.advance(
                conn, source_api, dataset, watermarks.latest_timestamps(valid, dataset)
            )
            report = BatchReport(
                batch_id=batch_id,
                source_api=source_api,
                dataset=dataset,
                interval=interval,
                rows_fetched=len(valid) + len(rejected),
                rows_inserted=counts.inserted,
                rows_duplicate=counts.duplicate,
                rows_quarantined=quarantined,
                status="partial" if quarantined else "succeeded",
                load_path=counts.path,
                symbols=tuple(_symbols(valid, rejected)),
                replay_of=original if batch_id != original else None,
            )
            audit.finish_batch(
                conn,
                batch_id,
                status=report.status,
                rows_fetched=report.rows_fetched,
                rows_inserted=report.rows_inserted,
                rows_duplicate=report.rows_duplicate,
                rows_quarantined=report.rows_quarantined,
            )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        try:
            audit.mark_failed(conn, batch_id, error)
        except Exception:
            log.exception(
                "could not mark batch %s failed; audit.expire_stale_running will", batch_id
            )
        raise LoadError(f"batch {batch_id} ({source_api}/{dataset}) rolled back: {error}") from exc
    log.info(
        "batch %s %s/%s %s: fetched %d, inserted %d, duplicate %d, quarantined %d",
        batch_id,
        source_api,
        dataset,
        report.status,
        report.rows_fetched,
        report.rows_inserted,
        report.rows_duplicate,
        report.rows_quarantined,
    )
    return report
