"""The incremental watermark is exact (dbt/macros/incremental_horizon.sql).

Two things the old watermark ("newest ingestion time seen, less an hour") got wrong or paid for:
- a large load (`make demo`, a backfill) was recomputed whole by the next build, because every
  row of it sat within the hour before the newest stamp: now a build with nothing new rewrites
  nothing, however recent the load;
- without that slack, a load still open while a build reads bronze (stamped with its start,
  before rows that did commit) would be missed: the horizon is pulled back to the start of every
  open transaction, so the next build takes it.
Synthetic candles written with SQL: no ../shared/data needed.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

pytestmark = [pytest.mark.integration]

SELECTION = ("--select", "+daily_crypto_metrics")
INCREMENTAL = ("crypto_prices_cleaned", "daily_crypto_metrics")

_INSERT_DAYS = """
insert into bronze.raw_crypto_prices
    ("timestamp", symbol, interval, open, high, low, close, volume, quote_volume,
     quote_currency, source_api, _batch_id)
select
    timestamptz '2024-01-01 00:00+00' + (day - 1) * interval '1 day', %(symbol)s, '1d',
    100 + day, 102 + day, 99 + day, 101 + day, 1000, 101000 + day, 'USDT', 'binance',
    gen_random_uuid()
from generate_series(%(first)s::int, %(last)s::int) as day
"""


def _land(conn: psycopg.Connection, symbol: str, first: int, last: int) -> None:
    conn.execute(_INSERT_DAYS, {"symbol": symbol, "first": first, "last": last})


def _rows_affected(result: Any) -> dict[str, int]:
    return {
        r.node.name: int(r.adapter_response.get("rows_affected", -1))
        for r in result.result.results
        if r.node.name in INCREMENTAL
    }


def _days(url: str, table: str, symbol: str) -> int:
    column = '"timestamp"' if table.startswith("silver") else "date"
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"select count(distinct {column}) from {table} where symbol = %s", (symbol,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_load_is_computed_once_and_an_open_load_is_not_missed(fresh_database, dbt_factory):
    url = fresh_database()
    dbt = dbt_factory(url)
    with psycopg.connect(url) as conn:  # one large load, stamped now (no "as if live" stamping)
        for symbol in ("BTC", "ETH"):
            _land(conn, symbol, 1, 200)
    dbt("run", *SELECTION)

    # Nothing new: nothing is recomputed, although the whole load is minutes old.
    assert _rows_affected(dbt("run", *SELECTION)) == {name: 0 for name in INCREMENTAL}

    # Load A opens first (its rows are stamped with its start) and stays open while load B,
    # stamped later, commits and a build runs: that build sees B only.
    open_load = psycopg.connect(url)
    try:
        _land(open_load, "BTC", 201, 201)
        with psycopg.connect(url) as conn:
            _land(conn, "ETH", 201, 201)
        dbt("run", *SELECTION)
        assert _days(url, "silver.crypto_prices_cleaned", "ETH") == 201
        assert _days(url, "silver.crypto_prices_cleaned", "BTC") == 200
        open_load.commit()
    finally:
        open_load.close()

    # A's row is older than B's, yet the next build takes it: the horizon stopped at A's start.
    # (B's row is taken again too: it is stamped after that horizon. Recomputing is idempotent.)
    assert _rows_affected(dbt("run", *SELECTION)) == {name: 2 for name in INCREMENTAL}
    for table in ("silver.crypto_prices_cleaned", "gold.daily_crypto_metrics"):
        assert _days(url, table, "BTC") == 201, table
        assert _days(url, table, "ETH") == 201, table
    assert _rows_affected(dbt("run", *SELECTION)) == {name: 0 for name in INCREMENTAL}
