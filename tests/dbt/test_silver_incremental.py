"""Incremental silver == full refresh of the same bronze, for every silver table and column.

Bronze: five tokens' daily Binance history up to 2026-03-02 with one ETH day (2024-05-01) held
back, Yahoo BTC daily, and Binance BTC 1h for September 2022. The silver build runs; then one
more day lands for every token, the held-back ETH day arrives late (so ETH's indicators must
continue from stored state in the middle of its history), and 11 more BTC hours. After an
incremental run each table must equal a full refresh to 1e-9 relative (in practice: exactly),
and the incremental run must have rewritten only the candles from each series' first change on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SILVER_TABLES = ("crypto_prices_cleaned", "technical_indicators", "returns_and_risk")
#: Five tokens of different price scales (PEPE's closes are ~1e-5) and history lengths: enough
#: to show every series continues from its own state; more tokens would only repeat them.
DAILY = ("BTC", "ETH", "SOL", "DOGE", "PEPE")
FIRST_END = "2026-03-02"
NEW_DAY = "2026-03-03"
LATE_ETH_DAY = "2024-05-01"
#: When the row was written (the start of the dbt invocation), not what it is: the marker the
#: scheduled builds' data tests scope to (dbt/macros/tests/untested_rows.sql). A full refresh
#: rewrites every row, so it is left out of the comparison; the incremental run must have
#: stamped exactly the rows it rewrote.
BUILT_AT = "_built_at"


def _table(conn: psycopg.Connection, name: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(f"select * from silver.{name} order by symbol, interval, timestamp")
        columns = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def _assert_frames_equal(incremental: pd.DataFrame, full: pd.DataFrame, table: str) -> None:
    assert list(incremental.columns) == list(full.columns), table
    assert len(incremental) == len(full), table
    for column in full.columns.drop(BUILT_AT):
        left, right = incremental[column], full[column]
        if pd.api.types.is_float_dtype(right) or pd.api.types.is_float_dtype(left):
            np.testing.assert_allclose(
                left.to_numpy(dtype="float64"), right.to_numpy(dtype="float64"),
                rtol=1e-9, atol=0, equal_nan=True, err_msg=f"{table}.{column}",
            )  # fmt: skip
        else:
            mismatched = ~((left == right) | (left.isna() & right.isna()))
            assert not mismatched.any(), f"{table}.{column}: {int(mismatched.sum())} rows differ"


def _rows_affected(result, model: str) -> int:
    for node_result in result.result.results:
        if node_result.node.name == model:
            return int(node_result.adapter_response["rows_affected"])
    raise AssertionError(f"{model} did not run")


def test_incremental_run_equals_full_refresh(fresh_database, bronze_loader, dbt_factory):
    url = fresh_database()
    loader = bronze_loader(url)
    daily = pd.concat([loader.binance_daily_frame(s) for s in DAILY])
    late = daily["timestamp"] == pd.Timestamp(LATE_ETH_DAY, tz="UTC")
    late &= daily["symbol"] == "ETH"
    first = daily[(daily["timestamp"] <= pd.Timestamp(FIRST_END, tz="UTC")) & ~late]
    loader.write_ohlcv(first, "binance", "1d")
    loader.yahoo_daily(["BTC"], end=FIRST_END)
    loader.binance_intraday(["BTC"], "1h", start="2022-09-01", end="2022-10-10 23:00")
    # The first load happened "yesterday", outside the watermark's lag tolerance.
    with psycopg.connect(url) as conn:
        conn.execute(
            "update bronze.raw_crypto_prices set _ingested_at = _ingested_at - interval '1 day'"
        )
    dbt = dbt_factory(url)
    # `run`, not `build`: this test is about the models' rows; the data and unit tests run in
    # test_silver.py and would only slow the three builds down.
    dbt("run", "--selector", "silver")

    new_day = daily[daily["timestamp"] == pd.Timestamp(NEW_DAY, tz="UTC")]
    assert len(new_day) == len(DAILY)
    loader.write_ohlcv(new_day, "binance", "1d")
    loader.write_ohlcv(daily[late], "binance", "1d")
    loader.binance_intraday(["BTC"], "1h", start="2022-10-11", end="2022-10-11 23:00")
    result = dbt("run", "--selector", "silver")

    with psycopg.connect(url) as conn:
        incremental = {name: _table(conn, name) for name in SILVER_TABLES}
        (eth_rewritten,) = conn.execute(
            "select count(*) from silver.crypto_prices_cleaned "
            "where symbol = 'ETH' and interval = '1d' and timestamp >= %s",
            (LATE_ETH_DAY,),
        ).fetchone()
    # Only what changed was rewritten: 12 new daily candles, ETH from its late day on, 11 hours.
    expected_rewrite = (len(DAILY) - 1) + eth_rewritten + 11
    assert eth_rewritten == 672
    for name in SILVER_TABLES:
        assert _rows_affected(result, name) == expected_rewrite, name
        stamps = incremental[name][BUILT_AT]
        assert (stamps == stamps.max()).sum() == expected_rewrite, name

    dbt("run", "--selector", "silver", "--full-refresh")
    with psycopg.connect(url) as conn:
        for name in SILVER_TABLES:
            _assert_frames_equal(incremental[name], _table(conn, name), name)
