"""Incremental runs must give exactly what a full refresh gives, for every silver and gold table.

Real history (Binance daily BTC/ETH/LINK/UNI from 2021-09, hourly BTC/ETH from 2022-07,
CoinGecko market data) is loaded and stamped as if ingested live, five minutes after each candle
closed, then built once for the module. Each test then changes a copy of that database the way
that breaks naive incremental models and runs an incremental `dbt build`:

- one more day arrives together with two late rows: a CoinGecko snapshot for an old day (changes
  a past market cap, hence the category index from there on) and a lower-ranked Yahoo candle for
  an old ETH day (silver keeps Binance's candle, but the candle's newest ingestion moves);
- candles are deleted from bronze (the middle of a daily series, one hour of a day, the newest
  candle of a series);
- candles' closes are corrected in bronze (a day, an hour).

After the incremental build every table is copied aside, `dbt build --full-refresh` rebuilds
everything from bronze, and the two must match row for row, bit for bit (EXCEPT ALL both ways),
except the columns that state when a table was built. Each test also checks that the build
stayed incremental: no gold row dated before the first change was rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
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

#: Incremental silver tables (each must drop a deleted candle and follow a corrected one).
INCREMENTAL_SILVER = ("crypto_prices_cleaned", "technical_indicators", "returns_and_risk")
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


def _market(loader: Any) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The CoinGecko rows of the window, and which are the late snapshot and the new day's."""
    day = pd.Timedelta(days=1)
    market = pd.concat(
        loader.coingecko_frame(s).pipe(
            lambda f: f[(f["timestamp"] >= HISTORY_START) & (f["timestamp"] <= NEW_DAY + day)]
        )
        for s in SYMBOLS
    )
    is_late = (market["symbol"] == LATE_SNAPSHOT[0]) & (market["timestamp"] == LATE_SNAPSHOT[1])
    is_new = market["timestamp"] == NEW_DAY + day  # the snapshot at the new day's close
    return market, is_late, is_new


@dataclass(frozen=True)
class BuiltHistory:
    """A database holding the history, stamped as ingested live and built (silver and gold).

    Never written to: each test works on its own copy (copy_database), so the expensive first
    build happens once per module.
    """

    url: str
    #: per incremental gold table: key -> xmin after the first build
    versions: dict[str, dict[tuple[Any, ...], str]]


@pytest.fixture(scope="module")
def built_history(
    fresh_database: Callable[[], str],
    bronze_loader: Callable[[str], Any],
    dbt_factory: Callable[[str], Any],
) -> BuiltHistory:
    url = fresh_database()
    loader = bronze_loader(url)
    market, is_late, is_new = _market(loader)
    assert is_late.sum() == 1 and is_new.sum() == 2  # LINK/UNI exports end in September

    loader.binance_daily(SYMBOLS, start=HISTORY_START, end=NEW_DAY - pd.Timedelta(days=1))
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
    dbt_factory(url)("build")
    with psycopg.connect(url) as conn:
        versions = {t: _row_versions(conn, t, k) for t, k in INCREMENTAL_GOLD.items()}
    return BuiltHistory(url, versions)


def _rewritten_before(
    built: BuiltHistory, url: str, first_change: date
) -> dict[str, tuple[int, int]]:
    """Per incremental gold table: (rows dated before `first_change`, how many of them the last
    build rewrote). The incremental build must leave days before the first change alone."""
    with psycopg.connect(url) as conn:
        after = {t: _row_versions(conn, t, k) for t, k in INCREMENTAL_GOLD.items()}
    counts = {}
    for table, versions in after.items():
        date_at = INCREMENTAL_GOLD[table].split(", ").index("date")
        before = built.versions[table]
        old = [k for k in before if k[date_at] < first_change]
        counts[table] = (len(old), sum(versions.get(k) != before[k] for k in old))
    return counts


def _assert_quality_counts_are_silvers(conn: psycopg.Connection) -> None:
    """data_quality_summary reads its counts through indexes (the newest indicator row's
    candle_number, the partial index of flagged candles): they must be silver's own counts, and
    the partial index must exist exactly once (created by a post-hook only when missing)."""
    differing = conn.execute(
        """
        select summary.symbol
        from gold.data_quality_summary as summary
        left join (
            select
                symbol,
                count(*) as candles,
                count(*) filter (where has_gap) as gaps,
                coalesce(sum(gap_candles), 0) as missing,
                count(*) filter (where is_outlier) as outliers
            from silver.crypto_prices_cleaned
            group by symbol
        ) as silver using (symbol)
        where (summary.candle_count, summary.gap_count, summary.missing_candles,
               summary.outlier_count)
            is distinct from (coalesce(silver.candles, 0), coalesce(silver.gaps, 0),
                              coalesce(silver.missing, 0), coalesce(silver.outliers, 0))
        """
    ).fetchall()
    assert differing == []
    assert conn.execute(
        "select count(*) from pg_index"
        " where indrelid = 'silver.crypto_prices_cleaned'::regclass and indpred is not null"
    ).fetchone() == (1,)


def _assert_incremental_equals_full_refresh(url: str, dbt: Any) -> None:
    """Copy every silver and gold table aside, rebuild all from bronze with --full-refresh, and
    compare both ways with EXCEPT ALL (bit for bit, build-time columns left out)."""
    with psycopg.connect(url) as conn:
        _assert_quality_counts_are_silvers(conn)
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

    dbt("build", "--full-refresh")

    with psycopg.connect(url) as conn:
        _assert_quality_counts_are_silvers(conn)
        assert _tables(conn) == tables
        assert {("gold", t) for t in (*INCREMENTAL_GOLD, "correlation_matrix", "correlation_network", "data_quality_summary", "token_daily_features")} <= set(tables)  # fmt: skip
        assert {("silver", t) for t in INCREMENTAL_SILVER} <= set(tables)
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


def test_incremental_build_equals_full_refresh(
    built_history: BuiltHistory,
    copy_database: Callable[[str], str],
    bronze_loader: Callable[[str], Any],
    dbt_factory: Callable[[str], Any],
) -> None:
    url = copy_database(built_history.url)
    loader = bronze_loader(url)
    dbt = dbt_factory(url)
    market, is_late, is_new = _market(loader)

    # --- one more day, with two late rows for old days --------------------------------------
    loader.binance_daily(SYMBOLS, start=NEW_DAY, end=NEW_DAY)
    loader.binance_intraday(HOURLY, "1h", start=NEW_DAY, end=NEW_DAY + pd.Timedelta(hours=23))
    loader.write_market(market[is_late | is_new])
    loader.yahoo_daily([LATE_CANDLE[0]], start=LATE_CANDLE[1], end=LATE_CANDLE[1])
    dbt("build")

    # The incremental run really was incremental: rows of days before the first late arrival
    # were not rewritten, and tokens with nothing late (LINK, UNI) got only the newest days.
    for table, (old, rewritten) in _rewritten_before(
        built_history, url, LATE_CANDLE[1].date()
    ).items():
        assert old, table
        assert not rewritten, f"{table}: {rewritten} rows before {LATE_CANDLE[1].date()} rewritten"
    with psycopg.connect(url) as conn:
        daily_after = _row_versions(
            conn, "daily_crypto_metrics", INCREMENTAL_GOLD["daily_crypto_metrics"]
        )
    daily_before = built_history.versions["daily_crypto_metrics"]
    for symbol in ("LINK", "UNI"):
        written = {k for k, v in daily_after.items() if k[0] == symbol and daily_before.get(k) != v}
        # only the new day: the previous build's ingestion horizon covers everything before it
        # (no slack re-reads the day before: macros/incremental_horizon.sql)
        assert written == {(symbol, NEW_DAY.date())}

    _assert_incremental_equals_full_refresh(url, dbt)
    with psycopg.connect(url) as conn:
        # the new day reached gold
        assert conn.execute(
            "select count(*) from gold.daily_crypto_metrics where date = %s", (NEW_DAY.date(),)
        ).fetchone() == (4,)


#: Candles deleted from bronze after the first build, in one statement: the middle of LINK's
#: daily series (LINK is the only Infrastructure token here, so its category loses the day and
#: the next, which has no return across the gap), one BTC hour (the day is no longer complete in
#: hours: gold falls back to the daily candle) and UNI's newest candle (nothing after it in
#: silver carries the deletion's mark).
DELETED = (
    ("LINK", "1d", pd.Timestamp("2022-08-15", tz="UTC")),
    ("BTC", "1h", pd.Timestamp("2022-08-20 13:00", tz="UTC")),
    ("UNI", "1d", NEW_DAY - pd.Timedelta(days=1)),
)
#: Candles whose close is corrected in bronze after the first build (high raised with it where
#: the new close would pass it): a LINK day and one BTC hour.
CORRECTED = (
    ("LINK", "1d", pd.Timestamp("2022-08-15", tz="UTC"), 1.05),
    ("BTC", "1h", pd.Timestamp("2022-08-20 13:00", tz="UTC"), 1.01),
)


def _silver_keys(url: str, symbol: str, interval: str, at: pd.Timestamp) -> dict[str, int]:
    """Rows each incremental silver table holds for one candle."""
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                sql.SQL(
                    'select count(*) from silver.{} where symbol = %s and interval = %s and "timestamp" = %s'
                ).format(sql.Identifier(table)),
                (symbol, interval, at),
            ).fetchone()[0]  # type: ignore[index]
            for table in INCREMENTAL_SILVER
        }


@pytest.mark.slow
def test_deleted_candles_leave_every_incremental_table_as_a_full_refresh_would(
    built_history: BuiltHistory,
    copy_database: Callable[[str], str],
    dbt_factory: Callable[[str], Any],
) -> None:
    url = copy_database(built_history.url)
    dbt = dbt_factory(url)
    with psycopg.connect(url) as conn:
        for symbol, interval, at in DELETED:
            deleted = conn.execute(
                'delete from bronze.raw_crypto_prices where symbol = %s and interval = %s and "timestamp" = %s',
                (symbol, interval, at),
            ).rowcount
            assert deleted == 1, (symbol, interval, at)
    dbt("build")

    for symbol, interval, at in DELETED:
        assert _silver_keys(url, symbol, interval, at) == dict.fromkeys(INCREMENTAL_SILVER, 0)
    link_day, btc_hour, uni_last = (at for _, _, at in DELETED)
    with psycopg.connect(url) as conn:
        days = {
            (symbol, day): source_interval
            for symbol, day, source_interval in conn.execute(
                "select symbol, date, source_interval from gold.daily_crypto_metrics"
            ).fetchall()
        }
        assert ("LINK", link_day.date()) not in days and ("UNI", uni_last.date()) not in days
        assert days[("BTC", btc_hour.date())] == "1d"
        assert conn.execute(
            "select count(*) from gold.rolling_correlation where date = %s and 'LINK' in (symbol_a, symbol_b)",
            (link_day.date(),),
        ).fetchone() == (0,)
        assert conn.execute(
            "select count(*) from gold.category_metrics where category = 'Infrastructure'"
            " and date in (%s, %s)",
            (link_day.date(), link_day.date() + timedelta(days=1)),
        ).fetchone() == (0,)
    # Incremental still: nothing dated before the first deleted day was rewritten.
    for table, (old, rewritten) in _rewritten_before(built_history, url, link_day.date()).items():
        assert old, table
        assert not rewritten, f"{table}: {rewritten} rows before {link_day.date()} rewritten"

    _assert_incremental_equals_full_refresh(url, dbt)


@pytest.mark.slow
def test_corrected_closes_reach_every_incremental_table_as_a_full_refresh_would(
    built_history: BuiltHistory,
    copy_database: Callable[[str], str],
    dbt_factory: Callable[[str], Any],
) -> None:
    url = copy_database(built_history.url)
    dbt = dbt_factory(url)
    with psycopg.connect(url) as conn:
        for symbol, interval, at, factor in CORRECTED:
            corrected = conn.execute(
                "update bronze.raw_crypto_prices"
                " set close = close * %s, high = greatest(high, close * %s)"
                ' where symbol = %s and interval = %s and "timestamp" = %s',
                (factor, factor, symbol, interval, at),
            ).rowcount
            assert corrected == 1, (symbol, interval, at)
        link_close = conn.execute(
            "select close from bronze.raw_crypto_prices"
            " where symbol = 'LINK' and interval = '1d' and \"timestamp\" = %s",
            (CORRECTED[0][2],),
        ).fetchone()[0]  # type: ignore[index]
    dbt("build")

    first_change = min(at for _, _, at, _ in CORRECTED).date()
    with psycopg.connect(url) as conn:
        for table in INCREMENTAL_SILVER:
            assert conn.execute(
                sql.SQL(
                    "select close from silver.{} where symbol = 'LINK' and interval = '1d'"
                    ' and "timestamp" = %s'
                ).format(sql.Identifier(table)),
                (CORRECTED[0][2],),
            ).fetchone() == (link_close,), table
        assert conn.execute(
            "select close from gold.daily_crypto_metrics where symbol = 'LINK' and date = %s",
            (first_change,),
        ).fetchone() == (link_close,)
    for table, (old, rewritten) in _rewritten_before(built_history, url, first_change).items():
        assert old, table
        assert not rewritten, f"{table}: {rewritten} rows before {first_change} rewritten"

    _assert_incremental_equals_full_refresh(url, dbt)
