"""Keep rows that failed validation, with the reason and where their raw payload is.

Why a table rather than dropping or logging them: a bad row is evidence (a source changed a
field, an exchange published a broken candle). Keeping it as JSON next to the readable reason
and the lake manifest that holds the exact bytes lets someone find, explain and replay it.

Why each row once: replaying a batch, or fetching an overlapping window again, rejects the same
row again. A unique index on (source_api, dataset, md5(row_data)) (migration 0003) and
`on conflict do nothing` keep the first copy with its original batch and payload pointer, as
bronze itself does for valid rows.
"""

from __future__ import annotations

import logging
import uuid

import pandas as pd
import psycopg
from psycopg import sql

from crypto_analytics.errors import LoadError
from crypto_analytics.ingestion.frames import Dataset

log = logging.getLogger(__name__)

REASON_COLUMN = "reason"


_STAGE_COLUMNS = (
    "_batch_id uuid, source_api text, dataset text, symbol text, reason text, row_data jsonb, "
    "raw_payload_path text"
)
_COLUMN_LIST = "_batch_id, source_api, dataset, symbol, reason, row_data, raw_payload_path"


def quarantine_rows(
    conn: psycopg.Connection,
    *,
    batch_id: uuid.UUID,
    source_api: str,
    dataset: Dataset | str,
    rejected: pd.DataFrame,
    raw_payload_path: str | None,
) -> int:
    """Keep the rejected rows (inside the caller's transaction); returns how many were rejected.

    `rejected` is validation's output: the row's columns plus a non-empty `reason`. Every
    column but `reason` goes to row_data as JSON (NaN/NaT become null, timestamps ISO 8601 UTC).
    A row quarantine already holds (same source, dataset and row_data) is not stored again.
    """
    if rejected.empty:
        return 0
    if REASON_COLUMN not in rejected.columns:
        raise LoadError("rejected rows have no 'reason' column; quarantine needs one per row")
    reasons = rejected[REASON_COLUMN]
    blank = reasons.isna() | (reasons.astype("string").str.strip() == "")
    if blank.any():
        raise LoadError(f"{int(blank.sum())} rejected rows have an empty reason")
    data = rejected.drop(columns=[REASON_COLUMN])
    # to_json is vectorised and maps NaN/NaT/pd.NA to null, which json.dumps would not.
    row_json = data.to_json(orient="records", lines=True, date_format="iso", date_unit="us")
    # JSON escapes newlines inside strings, so each non-empty line is one row
    documents = [line for line in row_json.split("\n") if line]
    symbols = (
        data["symbol"].astype("object").where(data["symbol"].notna(), None).tolist()
        if "symbol" in data.columns
        else [None] * len(data)
    )
    stage = sql.Identifier(f"quarantine_stage_{uuid.uuid4().hex[:12]}")
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("create temp table {} (" + _STAGE_COLUMNS + ") on commit drop").format(stage)
        )
        with cur.copy(sql.SQL("copy {} (" + _COLUMN_LIST + ") from stdin").format(stage)) as copy:
            for symbol, reason, document in zip(symbols, reasons.tolist(), documents, strict=True):
                copy.write_row(
                    (
                        batch_id,
                        source_api,
                        str(dataset),
                        symbol,
                        str(reason),
                        document,
                        raw_payload_path,
                    )
                )
        cur.execute(
            sql.SQL(
                "insert into bronze.quarantine (" + _COLUMN_LIST + ") "
                "select " + _COLUMN_LIST + " from {} "
                "on conflict (source_api, dataset, md5(row_data::text)) do nothing"
            ).format(stage)
        )
        stored = cur.rowcount
        cur.execute(sql.SQL("drop table {}").format(stage))
    log.info(
        "batch %s: quarantined %d %s rows (%d already in quarantine)",
        batch_id,
        len(documents),
        dataset,
        len(documents) - stored,
    )
    return len(documents)
