"""Human-readable summaries of what the warehouse holds (for the CLI and `make demo`)."""

from __future__ import annotations

from psycopg import sql

from crypto_analytics.warehouse import connect

_BRONZE_COUNTS = """
select 'raw_crypto_prices' as tbl, source_api, count(*), min("timestamp"), max("timestamp"),
       count(distinct symbol)
from bronze.raw_crypto_prices group by source_api
union all
select 'raw_market_data', source_api, count(*), min("timestamp"), max("timestamp"), count(distinct symbol)
from bronze.raw_market_data group by source_api
union all
select 'raw_orderbook', source_api, count(*), min("timestamp"), max("timestamp"), count(distinct symbol)
from bronze.raw_orderbook group by source_api
order by 1, 2
"""


def bronze_summary() -> str:
    """A small table: rows, symbols and time range per bronze table and source; batch outcomes."""
    lines = [f"{'table':<20} {'source':<16} {'rows':>9} {'symbols':>7}  range (UTC)"]
    with connect() as conn:
        for table, source, rows, first, last, symbols in conn.execute(_BRONZE_COUNTS):
            lines.append(
                f"{table:<20} {source:<16} {rows:>9} {symbols:>7}  {first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M}"
            )
        statuses = conn.execute(
            "select status, count(*) from bronze.ingestion_audit group by status order by status"
        ).fetchall()
        (quarantined,) = conn.execute("select count(*) from bronze.quarantine").fetchone() or (0,)
    lines.append(
        "batches: " + ", ".join(f"{s} {n}" for s, n in statuses) if statuses else "batches: none"
    )
    lines.append(f"quarantined rows: {quarantined}")
    return "\n".join(lines)


def layer_summary(schema: str) -> str:
    """Row counts of every table a dbt layer built (what `make demo` ends with)."""
    with connect() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables "
                "where table_schema = %s and table_type = 'BASE TABLE' order by 1",
                (schema,),
            )
        ]
        lines = [f"{schema} tables:"]
        for table in tables:
            (rows,) = conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
            ).fetchone() or (0,)
            lines.append(f"  {schema}.{table:<28} {rows:>9} rows")
    if not tables:
        lines.append("  (none built)")
    return "\n".join(lines)
