"""Incremental data tests: what the scheduled builds' tests read, and why that is still safe.

Scheduled builds run dbt with SCHEDULED_DBT_VARS (var incremental_tests): the tests that carry
`where: "__untested_rows__"` read only the rows whose `_built_at` is newer than the last run in
which all of that table's such tests passed (dbt/macros/tests/untested_rows.sql). Builds run by
hand read every row. Real Binance daily history of BTC and ETH (June to December 2024) is built
once in the scheduled mode; then:

- every row carries the start of the build that wrote it, and that build, having passed, is the
  tables' watermark;
- the compiled tests show the two modes: the scheduled one filters on `_built_at`, the by-hand
  one reads the table;
- the grain is enforced, not tested: NOT NULL key columns (contract constraints) and a unique
  index on the same columns hold it for the whole table;
- an already tested row changed behind dbt's back is not re-read by a scheduled build, and is
  caught by a build run by hand (the check a person runs after touching data);
- Cosmos runs `dbt run` and `dbt test` as separate invocations: rows a run wrote without tests
  are untested, and the next `dbt test` reads and fails them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from crypto_analytics.errors import DataQualityError

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SYMBOLS = ("BTC", "ETH")
LAST_DAY = pd.Timestamp("2024-12-30", tz="UTC")
#: The incremental tables, whose rows carry `_built_at`, with their grain.
STAMPED = {
    "silver.crypto_prices_cleaned": ("symbol", "interval", "timestamp"),
    "silver.technical_indicators": ("symbol", "interval", "timestamp"),
    "silver.returns_and_risk": ("symbol", "interval", "timestamp"),
    "gold.daily_crypto_metrics": ("symbol", "date"),
    "gold.rolling_correlation": ("date", "symbol_a", "symbol_b"),
}
#: Those with row-level tests scoped to untested rows (the others' rules are all constraints).
SCOPED = ("silver.crypto_prices_cleaned", "gold.daily_crypto_metrics")
LOW_TEST = "accepted_range_crypto_prices_cleaned_low__False__0"


@pytest.fixture(scope="module")
def built(
    fresh_database: Callable[[], str],
    bronze_loader: Callable[[str], Any],
    scheduled_dbt_factory: Callable[[str], Any],
) -> tuple[str, Any]:
    """(url, scheduled dbt handle) of a database built once, as the scheduler builds it."""
    url = fresh_database()
    bronze_loader(url).binance_daily(SYMBOLS, start="2024-06-01", end=LAST_DAY)
    with psycopg.connect(url) as conn:
        conn.execute(
            "update bronze.raw_crypto_prices"
            " set _ingested_at = \"timestamp\" + interval '1 day 5 minutes'"
        )
    dbt = scheduled_dbt_factory(url)
    dbt("build")
    return url, dbt


def watermark(url: str, relation: str) -> datetime | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select tested_through from public.dbt_test_watermarks where relation_name = %s",
            (relation,),
        ).fetchone()
    return row[0] if row else None


def compiled_test(target: Path, name: str) -> str:
    """The SQL dbt compiled for a test in a target folder."""
    (path,) = (target / "compiled").rglob(f"{name}.sql")
    return path.read_text()


def test_every_row_carries_the_build_that_wrote_it(built: tuple[str, Any]) -> None:
    url, _ = built
    with psycopg.connect(url) as conn:
        for relation in STAMPED:
            rows, stamped, builds, built_at = conn.execute(
                f"select count(*), count(_built_at), count(distinct _built_at), max(_built_at)"
                f" from {relation}"
            ).fetchone()  # type: ignore[misc]
            assert rows > 0 and stamped == rows and builds == 1, relation
            # the build passed its tests: its start is the table's watermark
            expected = built_at if relation in SCOPED else None
            assert watermark(url, relation) == expected, relation
    # the bronze table and the staging view, scoped by ingestion time, have watermarks too (kept
    # apart, under `#ingested`): the build's ingestion horizon, past every row it tested
    with psycopg.connect(url) as conn:
        horizons = {
            h for (h,) in conn.execute("select horizon from public.dbt_invocation_horizons")
        }
        (newest,) = conn.execute(
            "select max(_ingested_at) from bronze.raw_crypto_prices"
        ).fetchone()
    ingested = {
        watermark(url, f"{relation}#ingested")
        for relation in ("bronze.raw_crypto_prices", "silver.stg_bronze__crypto_prices")
    }
    assert len(ingested) == 1 and ingested <= horizons
    assert ingested.pop() > newest
    assert watermark(url, "bronze.raw_crypto_prices") is None  # never taken for a horizon


def test_compiled_tests_show_the_two_modes(
    built: tuple[str, Any], dbt_factory: Callable[[str], Any]
) -> None:
    url, scheduled = built
    assert (
        "where _built_at > public.dbt_tested_through('silver.crypto_prices_cleaned')"
        in compiled_test(scheduled.target_path, LOW_TEST)
    )
    by_hand = dbt_factory(url)
    by_hand("compile", "--select", LOW_TEST)
    sql = compiled_test(by_hand.target_path, LOW_TEST)
    assert "_built_at" not in sql and "dbt_subquery" not in sql
    assert '"silver"."crypto_prices_cleaned"' in sql


def test_the_grain_is_enforced_by_constraints_not_tests(built: tuple[str, Any]) -> None:
    """The key columns are NOT NULL (contract constraints) and a unique index holds the grain,
    for the whole table: no scheduled test needs to re-read them."""
    url, _ = built
    with psycopg.connect(url) as conn:
        for relation, grain in STAMPED.items():
            schema, table = relation.split(".")
            nullable = conn.execute(
                "select column_name from information_schema.columns where table_schema = %s"
                " and table_name = %s and column_name = any(%s) and is_nullable = 'YES'",
                (schema, table, list(grain)),
            ).fetchall()
            assert nullable == [], relation
            unique_indexes = conn.execute(
                """
                select array_agg(a.attname::text order by k.position)
                from pg_index as i
                join pg_class as c on c.oid = i.indrelid
                join pg_namespace as n on n.oid = c.relnamespace
                cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, position)
                join pg_attribute as a on a.attrelid = c.oid and a.attnum = k.attnum
                where n.nspname = %s and c.relname = %s and i.indisunique and i.indisvalid
                group by i.indexrelid
                """,
                (schema, table),
            ).fetchall()
            assert set(grain) in [set(columns) for (columns,) in unique_indexes], relation
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(
                "insert into silver.crypto_prices_cleaned"
                " select * from silver.crypto_prices_cleaned limit 1"
            )
        with pytest.raises(psycopg.errors.NotNullViolation), conn.transaction():
            conn.execute(
                "update gold.daily_crypto_metrics set symbol = null"
                " where (symbol, date) in (select symbol, date from gold.daily_crypto_metrics"
                " limit 1)"
            )


def test_tested_rows_are_not_reread_by_scheduled_builds(
    built: tuple[str, Any], dbt_factory: Callable[[str], Any]
) -> None:
    url, scheduled = built
    tampered = (LAST_DAY - pd.Timedelta(days=90)).to_pydatetime()
    candle = "from silver.crypto_prices_cleaned where symbol = 'BTC' and \"timestamp\" = %s"
    with psycopg.connect(url) as conn:
        (true_low,) = conn.execute(f"select low {candle}", (tampered,)).fetchone()  # type: ignore[misc]
        conn.execute(
            "update silver.crypto_prices_cleaned set low = 0"
            " where symbol = 'BTC' and \"timestamp\" = %s",
            (tampered,),
        )
    try:
        scheduled("build")  # nothing new to test: passes
        with pytest.raises(DataQualityError, match=LOW_TEST):
            dbt_factory(url)("build")
    finally:
        with psycopg.connect(url) as conn:
            conn.execute(
                "update silver.crypto_prices_cleaned set low = %s"
                " where symbol = 'BTC' and \"timestamp\" = %s",
                (true_low, tampered),
            )


def test_rows_run_without_tests_are_tested_by_the_next_test_run(
    built: tuple[str, Any], bronze_loader: Callable[[str], Any]
) -> None:
    """The Cosmos shape: a `run` task per model, then a `test` task in another invocation."""
    url, scheduled = built
    before = watermark(url, "silver.crypto_prices_cleaned")
    loader = bronze_loader(url)
    new_day = loader.binance_daily_frame("BTC")
    new_day = new_day[new_day["timestamp"] == LAST_DAY + pd.Timedelta(days=1)].assign(low=0.0)
    assert len(new_day) == 1
    loader.write_ohlcv(new_day, "binance", "1d")

    scheduled("run", "--select", "crypto_prices_cleaned")
    assert watermark(url, "silver.crypto_prices_cleaned") == before

    with pytest.raises(DataQualityError, match=LOW_TEST):
        scheduled(
            "test", "--select", "crypto_prices_cleaned", "--exclude-resource-type", "unit_test"
        )
    assert watermark(url, "silver.crypto_prices_cleaned") == before
