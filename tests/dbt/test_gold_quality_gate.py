"""Bad silver must not reach gold: a failing silver test stops the gold build.

Real Binance history is built once; then the next day arrives with one corrupt candle (ETH's
low printed as 0, a bad tick that slipped past ingestion). `dbt build` builds silver, silver's
"low > 0" test fails, and dbt skips every gold model downstream of it: the run fails with a
DataQualityError naming the test, and every gold table is exactly as it was, without the new
day.

Both ways dbt is run: by hand (every test reads its whole table) and as the scheduled Airflow
builds run it (SCHEDULED_DBT_VARS: the tests of the large tables read only rows no passing run
has checked). In the scheduled mode the gate must also hold on the retry, when the incremental
models rewrite nothing (the bad candle's ingestion is older than the lag tolerance) and the bad
row is therefore not "written by this run": it is still untested, so it is tested, and fails,
again. Once the tick is corrected in bronze, the next run passes and the day reaches gold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from crypto_analytics.errors import DataQualityError, TransformError

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SYMBOLS = ("BTC", "ETH", "SOL")
LAST_GOOD_DAY = pd.Timestamp("2024-12-30", tz="UTC")
BAD_DAY = LAST_GOOD_DAY + pd.Timedelta(days=1)
GOLD_TABLES = (
    "daily_crypto_metrics",
    "correlation_matrix",
    "correlation_network",
    "rolling_correlation",
    "category_metrics",
    "data_quality_summary",
)
FAILING_TEST = "accepted_range_crypto_prices_cleaned_low"


def gold_contents(url: str) -> dict[str, str]:
    """md5 of every gold table's rows in a fixed order (build-time columns left out)."""
    contents = {}
    with psycopg.connect(url) as conn:
        for table in GOLD_TABLES:
            columns = [
                name
                for (name,) in conn.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'gold' and table_name = %s order by ordinal_position",
                    (table,),
                ).fetchall()
                if name not in {"measured_at", "age_hours", "freshness_status"}
            ]
            column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
            query = sql.SQL(
                "select count(*), md5(coalesce(string_agg(r::text, '|' order by r::text), ''))"
                " from (select {} from gold.{}) as r"
            ).format(column_list, sql.Identifier(table))
            count, digest = conn.execute(query).fetchone()  # type: ignore[misc]
            assert count > 0, table
            contents[table] = digest
    return contents


def newest_gold_day(url: str) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute("select max(date) from gold.daily_crypto_metrics").fetchone()


def watermark_of(url: str, relation: str) -> datetime | None:
    """The watermark of the scheduled builds' data tests for `schema.table`."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select tested_through from public.dbt_test_watermarks where relation_name = %s",
            (relation,),
        ).fetchone()
    return row[0] if row else None


def assert_build_stopped_at_silver(url: str, dbt: Any, before: dict[str, str]) -> None:
    """`dbt build` fails on the low > 0 test alone, and gold is skipped, unchanged."""
    with pytest.raises(DataQualityError, match=FAILING_TEST) as failed:
        dbt("build")
    assert "data test(s) failed" in str(failed.value)
    # no gold test ran on the bad day: gold was skipped, not built and then caught
    assert not any(table in str(failed.value) for table in GOLD_TABLES)
    assert newest_gold_day(url) == (LAST_GOOD_DAY.date(),)
    assert gold_contents(url) == before
    results = json.loads((dbt.target_path / "run_results.json").read_text())["results"]
    gold_status = {
        r["unique_id"].split(".")[-1]: r["status"]
        for r in results
        if r["unique_id"].startswith("model.") and r["unique_id"].split(".")[-1] in GOLD_TABLES
    }
    assert gold_status == dict.fromkeys(GOLD_TABLES, "skipped")


@pytest.mark.parametrize("mode", ["by_hand", "scheduled"])
def test_failing_silver_test_leaves_gold_unbuilt_and_unchanged(
    mode: str,
    fresh_database: Callable[[], str],
    bronze_loader: Callable[[str], Any],
    dbt_factory: Callable[[str], Any],
    scheduled_dbt_factory: Callable[[str], Any],
) -> None:
    url = fresh_database()
    loader = bronze_loader(url)
    dbt = (scheduled_dbt_factory if mode == "scheduled" else dbt_factory)(url)
    loader.binance_daily(SYMBOLS, start="2024-01-01", end=LAST_GOOD_DAY)
    with psycopg.connect(url) as conn:
        # history as if ingested live, each candle shortly after it closed
        conn.execute(
            "update bronze.raw_crypto_prices"
            " set _ingested_at = \"timestamp\" + interval '1 day 5 minutes'"
        )
    dbt("build")
    before = gold_contents(url)
    first_pass = watermark_of(url, "silver.crypto_prices_cleaned")
    assert first_pass is not None

    next_day = pd.concat(loader.binance_daily_frame(s) for s in SYMBOLS)
    next_day = next_day[next_day["timestamp"] == BAD_DAY].copy()
    true_low = float(next_day.loc[next_day["symbol"] == "ETH", "low"].iloc[0])
    next_day.loc[next_day["symbol"] == "ETH", "low"] = 0.0
    assert (next_day["low"] == 0).sum() == 1
    loader.write_ohlcv(next_day, "binance", "1d")
    with psycopg.connect(url) as conn:
        # landed two hours ago: past the models' one-hour ingestion lag tolerance, so a rerun
        # does not take these rows again
        conn.execute(
            "update bronze.raw_crypto_prices set _ingested_at = now() - interval '2 hours'"
            ' where "timestamp" = %s',
            (BAD_DAY.to_pydatetime(),),
        )

    assert_build_stopped_at_silver(url, dbt, before)
    # silver took the new day (the model built; then its test failed) ...
    with psycopg.connect(url) as conn:
        assert conn.execute(
            'select count(*) from silver.crypto_prices_cleaned where "timestamp" = %s',
            (BAD_DAY.to_pydatetime(),),
        ).fetchone() == (3,)
    # ... and the failed run did not mark anything tested
    assert watermark_of(url, "silver.crypto_prices_cleaned") == first_pass
    if mode == "by_hand":
        return

    # The retry (Airflow retries a failed task) writes no silver row: the bad candle is still
    # the failed run's, never passed, so it is tested again and fails again.
    with psycopg.connect(url) as conn:
        built_before_retry = conn.execute(
            "select _built_at from silver.crypto_prices_cleaned"
            " where symbol = 'ETH' and \"timestamp\" = %s",
            (BAD_DAY.to_pydatetime(),),
        ).fetchone()
    assert_build_stopped_at_silver(url, dbt, before)
    with psycopg.connect(url) as conn:
        assert (
            conn.execute(
                "select _built_at from silver.crypto_prices_cleaned"
                " where symbol = 'ETH' and \"timestamp\" = %s",
                (BAD_DAY.to_pydatetime(),),
            ).fetchone()
            == built_before_retry
        )
    assert watermark_of(url, "silver.crypto_prices_cleaned") == first_pass

    # The source re-delivers the candle corrected: the next run rewrites it, every test passes,
    # the watermark moves on and the day reaches gold.
    with psycopg.connect(url) as conn:
        conn.execute(
            "update bronze.raw_crypto_prices set low = %s, _ingested_at = now()"
            " where symbol = 'ETH' and \"timestamp\" = %s",
            (true_low, BAD_DAY.to_pydatetime()),
        )
    dbt("build")
    assert newest_gold_day(url) == (BAD_DAY.date(),)
    passed = watermark_of(url, "silver.crypto_prices_cleaned")
    assert passed is not None and passed > first_pass


def test_a_contract_violation_fails_silver_and_leaves_gold_unbuilt(
    fresh_database: Callable[[], str],
    bronze_loader: Callable[[str], Any],
    dbt_factory: Callable[[str], Any],
) -> None:
    """Checks enforced by silver's contract (here volume >= 0) stop the write itself: the model
    fails, nothing of the bad day lands in silver, and gold is skipped, unchanged."""
    url = fresh_database()
    loader = bronze_loader(url)
    dbt = dbt_factory(url)
    loader.binance_daily(SYMBOLS, start="2024-01-01", end=LAST_GOOD_DAY)
    with psycopg.connect(url) as conn:
        conn.execute(
            "update bronze.raw_crypto_prices"
            " set _ingested_at = \"timestamp\" + interval '1 day 5 minutes'"
        )
    dbt("build")
    before = gold_contents(url)

    next_day = pd.concat(loader.binance_daily_frame(s) for s in SYMBOLS)
    next_day = next_day[next_day["timestamp"] == BAD_DAY].copy()
    next_day.loc[next_day["symbol"] == "SOL", "volume"] = -5.0
    loader.write_ohlcv(next_day, "binance", "1d")

    with pytest.raises(TransformError, match="crypto_prices_cleaned") as failed:
        dbt("build")
    assert "volume" in str(failed.value)
    assert newest_gold_day(url) == (LAST_GOOD_DAY.date(),)
    assert gold_contents(url) == before
    with psycopg.connect(url) as conn:
        assert conn.execute(
            'select count(*) from silver.crypto_prices_cleaned where "timestamp" = %s',
            (BAD_DAY.to_pydatetime(),),
        ).fetchone() == (0,)
