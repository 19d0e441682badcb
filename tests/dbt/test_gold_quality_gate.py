"""Bad silver must not reach gold: a failing silver data test stops the gold build.

Real Binance history is built once; then the next day arrives with one corrupt candle (ETH's
low printed as 0, a bad tick that slipped past ingestion). `dbt build` builds silver, silver's
"low > 0" test fails, and dbt skips every gold model downstream of it: the run fails with a
DataQualityError naming the test, and every gold table is exactly as it was, without the new
day.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from crypto_analytics.errors import DataQualityError

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


def test_failing_silver_test_leaves_gold_unbuilt_and_unchanged(
    fresh_database: Callable[[], str],
    bronze_loader: Callable[[str], Any],
    dbt_factory: Callable[[str], Any],
    dbt_target_path: Path,
) -> None:
    url = fresh_database()
    loader = bronze_loader(url)
    dbt = dbt_factory(url)
    loader.binance_daily(SYMBOLS, start="2024-01-01", end=LAST_GOOD_DAY)
    dbt("build")
    before = gold_contents(url)

    next_day = pd.concat(loader.binance_daily_frame(s) for s in SYMBOLS)
    next_day = next_day[next_day["timestamp"] == BAD_DAY].copy()
    next_day.loc[next_day["symbol"] == "ETH", "low"] = 0.0
    assert (next_day["low"] == 0).sum() == 1
    loader.write_ohlcv(next_day, "binance", "1d")

    with pytest.raises(
        DataQualityError, match="accepted_range_crypto_prices_cleaned_low"
    ) as failed:
        dbt("build")
    assert "data test(s) failed" in str(failed.value)
    # no gold test ran on the bad day: gold was skipped, not built and then caught
    assert not any(table in str(failed.value) for table in GOLD_TABLES)

    # silver took the new day (the model built; then its test failed) ...
    with psycopg.connect(url) as conn:
        assert conn.execute(
            'select count(*) from silver.crypto_prices_cleaned where "timestamp" = %s',
            (BAD_DAY.to_pydatetime(),),
        ).fetchone() == (3,)
        newest = conn.execute("select max(date) from gold.daily_crypto_metrics").fetchone()
    # ... and nothing of it reached gold: every gold model was skipped, every table unchanged
    assert newest == (LAST_GOOD_DAY.date(),)
    assert gold_contents(url) == before
    results = json.loads((dbt_target_path / "run_results.json").read_text())["results"]
    gold_status = {
        r["unique_id"].split(".")[-1]: r["status"]
        for r in results
        if r["unique_id"].startswith("model.") and r["unique_id"].split(".")[-1] in GOLD_TABLES
    }
    assert gold_status == dict.fromkeys(GOLD_TABLES, "skipped")
