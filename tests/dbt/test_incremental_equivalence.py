"""Incremental runs must give exactly what a full refresh gives, for every silver and gold table.

Real history (Binance daily BTC/ETH/LINK/UNI from 2021-09, hourly BTC/ETH from 2022-07,
CoinGecko market data) is loaded and stamped as if ingested live, five minutes after each candle
closed, then built. Then one more day arrives together with two late rows, the cases that break
naive incremental models:
a CoinGecko snapshot for an old day (changes a past market cap, hence the category index from
there on) and a lower-ranked Yahoo candle for an old ETH day (silver keeps Binance's candle,
but the candle's newest ingestion moves). After the incremental build every table is copied
aside, `dbt build --full-refresh` rebuilds everything from bronze, and the two must match row
for row, bit for bit (EXCEPT ALL both ways), except the columns that state when a table was
built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg import sql

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SYMBOLS = ("BTC", "ETH", "LINK", "UNI")
HOURLY = ("BTC", "ETH")
HISTORY_START = pd.Timestamp("2021-09-01", tz="UTC")
HOURLY_START = pd.Timestamp("2022-07-01", tz="UTC")
NEW_DAY = pd.Timestamp("2022-10-10", tz="UTC")
LATE_SNAPSHOT = ("BTC", pd.Timestamp("2022-09-01", tz="UTC"))  # close of 2022-08-31
LATE_CANDLE = ("ETH", pd.Timestamp("2022-06-01", tz="UTC"))

#: Columns that say when the table was built, not what the data is.
BUILD_TIME_COLUMNS = {
    ("gold", "data_quality_summary"): {"measured_at", "age_hours", "freshness_status"}
}
#: `_built_at` (on the large incremental tables) is the start of the dbt invocation that wrote
#: the row, the marker the scheduled builds' data tests scope to (dbt/macros/tests/untested_rows.sql).
#: A full refresh rewrites every row, so it differs from the incremental build's by design.
BUILT_AT = "_built_at"

#: Incremental gold tables and their keys, for checking that old rows were left alone.
INCREMENTAL_GOLD = {
    "daily_crypto_metrics": "symbol, date",
    "rolling_correlation": "symbol_a, symbol_b, date",
    "category_metrics": "category, date",
}


def _tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        """
        select table_schema, table_name from information_schema.tables
        where table_schema in ('silver', 'gold') and table_type = 'BASE TABLE'
        order by 1, 2
        """
    ).fetchall()


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        """
        select column_name from information_schema.columns
        where table_schema = %s and table_name = %s order by ordinal_position
        """,
        (schema, table),
    ).fetchall()
    skip = BUILD_TIME_COLUMNS.get((schema, table), set()) | {BUILT_AT}
    return [name for (name,) in rows if name not in skip]


def _row_versions(conn: psycopg.Connection, table: str, key: str) -> dict[tuple[Any, ...], str]:
    """key -> xmin (the transaction that last wrote the row)."""
    query = sql.SQL("select {key}, xmin::text from gold.{table}").format(
        key=sql.SQL(key), table=sql.Identifier(table)
    )
    return {tuple(row[:-1]): row[-1] for row in conn.execute(query).fetchall()}


def test_incremental_build_equals_full_refresh(
    fresh_database: Callable[[], str],
    bronze_loader: Callable[[str], Any],
    dbt_factory: Callable[[str], Any],
) -> None:
    url = fresh_database()
    loader = bronze_loader(url)
    dbt = dbt_factory(url)
    day = pd.Timedelta(days=1)

    market = pd.concat(
        loader.coingecko_frame(s).pipe(
            lambda f: f[(f["timestamp"] >= HISTORY_START) & (f["timestamp"] <= NEW_DAY + day)]
        )
        for s in SYMBOLS
    )
    is_late = (market["symbol"] == LATE_SNAPSHOT[0]) & (market["timestamp"] == LATE_SNAPSHOT[1])
    is_new = market["timestamp"] == NEW_DAY + day  # the snapshot at the new day's close
    assert is_late.sum() == 1 and is_new.sum() == 2  # LINK/UNI exports end in September

    # --- history, as if ingested live --------------------------------------------------------
    loader.binance_daily(SYMBOLS, start=HISTORY_START, end=NEW_DAY - day)
    loader.binance_intraday(HOURLY, "1h", start=HOURLY_START, end=NEW_DAY - pd.Timedelta(hours=1))
    loader.write_market(market[~is_late & ~is_new])
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            update bronze.raw_crypto_prices
            set _ingested_at = "timestamp" + case interval when '1d' then interval '1 day'
                else interval '1 hour' end + interval '5 minutes'
            """
        )
        conn.execute(
            "update bronze.raw_market_data set _ingested_at = \"timestamp\" + interval '5 minutes'"
        )
    dbt("build")
    with psycopg.connect(url) as conn:
        before = {t: _row_versions(conn, t, k) for t, k in INCREMENTAL_GOLD.items()}

    # --- one more day, with two late rows for old days --------------------------------------
    loader.binance_daily(SYMBOLS, start=NEW_DAY, end=NEW_DAY)
    loader.binance_intraday(HOURLY, "1h", start=NEW_DAY, end=NEW_DAY + pd.Timedelta(hours=23))
    loader.write_market(market[is_late | is_new])
    loader.yahoo_daily([LATE_CANDLE[0]], start=LATE_CANDLE[1], end=LATE_CANDLE[1])
    dbt("build")

    with psycopg.connect(url) as conn:
        after = {t: _row_versions(conn, t, k) for t, k in INCREMENTAL_GOLD.items()}
        tables = _tables(conn)
        conn.execute("create schema incremental")
        for schema, table in tables:
            conn.execute(
                sql.SQL("create table incremental.{} as select * from {}.{}").format(
                    sql.Identifier(f"{schema}__{table}"),
                    sql.Identifier(schema),
                    sql.Identifier(table),
                )
            )

    # The incremental run really was incremental: rows of days before the first late arrival
    # were not rewritten, and tokens with nothing late (LINK, UNI) got only the newest days.
    first_change = LATE_CANDLE[1].date()
    for table, versions in after.items():
        date_at = INCREMENTAL_GOLD[table].split(", ").index("date")
        old = [k for k in before[table] if k[date_at] < first_change]
        rewritten = [k for k in old if versions.get(k) != before[table][k]]
        assert old, table
        assert not rewritten, f"{table}: {len(rewritten)} rows before {first_change} rewritten"
    daily_before, daily_after = before["daily_crypto_metrics"], after["daily_crypto_metrics"]
    for symbol in ("LINK", "UNI"):
        written = {k for k, v in daily_after.items() if k[0] == symbol and daily_before.get(k) != v}
        # only the new day: the previous build's ingestion horizon covers everything before it
        # (no slack re-reads the day before: macros/incremental_horizon.sql)
        assert written == {(symbol, NEW_DAY.date())}

    dbt("build", "--full-refresh")

    with psycopg.connect(url) as conn:
        assert _tables(conn) == tables
        assert {("gold", t) for t in (*INCREMENTAL_GOLD, "correlation_matrix", "correlation_network", "data_quality_summary")} <= set(tables)  # fmt: skip
        assert {("silver", t) for t in ("crypto_prices_cleaned", "technical_indicators", "returns_and_risk")} <= set(tables)  # fmt: skip
        for schema, table in tables:
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in _columns(conn, schema, table))
            full = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            incremental = sql.SQL("incremental.{}").format(sql.Identifier(f"{schema}__{table}"))
            counts = []
            for left, right in ((full, incremental), (incremental, full)):
                query = sql.SQL(
                    "select count(*) from (select {c} from {l} except all select {c} from {r}) as d"
                ).format(c=columns, l=left, r=right)
                counts.append(conn.execute(query).fetchone()[0])  # type: ignore[index]
            rows = conn.execute(sql.SQL("select count(*) from {}").format(full)).fetchone()[0]  # type: ignore[index]
            assert rows > 0, f"{schema}.{table} is empty"
            assert counts == [0, 0], (
                f"{schema}.{table}: {counts[0]} rows only in the full refresh, "
                f"{counts[1]} only in the incremental build (of {rows})"
            )
        # the new day reached gold
        assert conn.execute(
            "select count(*) from gold.daily_crypto_metrics where date = %s", (NEW_DAY.date(),)
        ).fetchone() == (4,)
