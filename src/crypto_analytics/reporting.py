"""Human-readable summaries of what the warehouse holds (for the CLI and `make demo`)."""

from __future__ import annotations

from datetime import timedelta

from psycopg import sql

from crypto_analytics.config import get_settings
from crypto_analytics.ingestion import audit
from crypto_analytics.ingestion.frames import SPECS
from crypto_analytics.warehouse import connect, database_url

#: Failed batches listed by `summary` (the newest first); the audit table has them all.
RECENT_FAILURES = 5


def _bronze_counts() -> sql.Composed:
    """Rows, time range and symbols per bronze table and source, for every dataset in SPECS."""
    parts = [
        sql.SQL(
            'select {name} as tbl, source_api, count(*), min("timestamp"), max("timestamp"), '
            "count(distinct symbol) from {table} group by source_api"
        ).format(
            name=sql.Literal(spec.table.split(".")[1]),
            table=sql.Identifier(*spec.table.split(".")),
        )
        for spec in SPECS.values()
    ]
    return sql.SQL(" union all ").join(parts) + sql.SQL(" order by 1, 2")


def bronze_summary() -> str:
    """A small table: rows, symbols and time range per bronze table and source; batch outcomes,
    with the latest failures. Batches still `running` past ingestion.stale_batch_minutes are
    marked failed first: their loads died, and a summary must not show them as running."""
    settings = get_settings()
    lines = [f"{'table':<20} {'source':<16} {'rows':>9} {'symbols':>7}  range (UTC)"]
    with connect(database_url(settings)) as conn:
        expired = audit.expire_stale_running(
            conn, timedelta(minutes=settings.ingestion.stale_batch_minutes)
        )
        for table, source, rows, first, last, symbols in conn.execute(_bronze_counts()):
            lines.append(
                f"{table:<20} {source:<16} {rows:>9} {symbols:>7}  {first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M}"
            )
        statuses = conn.execute(
            "select status, count(*) from bronze.ingestion_audit group by status order by status"
        ).fetchall()
        failures = conn.execute(
            """
            select started_at, source_api, dataset, array_to_string(symbols, ','), error
            from bronze.ingestion_audit where status = 'failed'
            order by started_at desc limit %s
            """,
            (RECENT_FAILURES,),
        ).fetchall()
        (quarantined,) = conn.execute("select count(*) from bronze.quarantine").fetchone() or (0,)
    lines.append(
        "batches: " + ", ".join(f"{s} {n}" for s, n in statuses) if statuses else "batches: none"
    )
    if expired:
        lines.append(f"  ({len(expired)} abandoned batch(es) marked failed just now)")
    for started, source, dataset, symbols, error in failures:
        lines.append(f"  failed {started:%Y-%m-%d %H:%M} {source} {dataset} {symbols}: {error}")
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
