"""`db init` creates the layers and bronze tables, and is safe to rerun."""

from __future__ import annotations

import pytest

from crypto_analytics.errors import ConfigError
from crypto_analytics.migrations.runner import Migration, init_database, migrate
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration


def test_init_creates_layers_and_tables_and_reruns_cleanly(warehouse_url, settings):
    with connect(warehouse_url) as conn:
        assert init_database(conn, settings) == []  # template already migrated: nothing pending
        schemas = {
            r[0] for r in conn.execute("select schema_name from information_schema.schemata")
        }
        assert {"bronze", "silver", "gold"} <= schemas
        tables = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'bronze'"
            )
        }
        assert {
            "raw_crypto_prices",
            "raw_market_data",
            "raw_orderbook",
            "ingestion_audit",
            "quarantine",
            "watermarks",
            "token_universe",
        } <= tables
        universe = dict(
            conn.execute("select symbol, category from bronze.token_universe").fetchall()
        )
        assert len(universe) == 38
        assert universe["BTC"] == "Layer 1" and universe["PEPE"] == "Meme"


def test_edited_migration_is_refused(warehouse_url, monkeypatch):
    from crypto_analytics.migrations import runner

    real = runner.available_migrations()
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in real]
    monkeypatch.setattr(runner, "available_migrations", lambda: edited)
    with (
        connect(warehouse_url) as conn,
        pytest.raises(ConfigError, match="edited after it was applied"),
    ):
        migrate(conn)


def _primary_key(conn, table: str) -> list[str] | None:
    """The primary key's columns of `table`, in key order (None without a primary key)."""
    (key,) = conn.execute(
        """
        select array_agg(a.attname::text order by k.ordinality)
        from pg_index i
        cross join unnest(i.indkey) with ordinality as k(attnum, ordinality)
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
        where i.indrelid = to_regclass(%s) and i.indisprimary
        """,
        (table,),
    ).fetchone()
    return key


def test_bronze_tables_match_the_dataset_specs(warehouse_url):
    """The migration SQL is checked against frames.SPECS, the one definition of each dataset:
    column order, SQL types, nullability and the primary key."""
    from crypto_analytics.ingestion.frames import LINEAGE_COLUMNS, SPECS

    with connect(warehouse_url) as conn:
        for spec in SPECS.values():
            columns = conn.execute(
                """
                select a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull
                from pg_attribute a
                where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
                order by a.attnum
                """,
                (spec.table,),
            ).fetchall()
            expected = [(c.name, c.sql_type, c.nullable) for c in spec.columns]
            expected += [(name, sql_type, False) for name, sql_type in LINEAGE_COLUMNS.items()]
            assert columns == expected, spec.table
            assert tuple(_primary_key(conn, spec.table)) == spec.natural_key, spec.table


_CANDLE = """
    insert into bronze.raw_crypto_prices ("timestamp", symbol, interval, open, high, low, close,
        volume, quote_currency, source_api, _batch_id)
    values ('2024-01-01 00:00+00', %s, '1d', 1, 1, 1, 1, 1, 'USDT', %s, gen_random_uuid())
"""


@pytest.mark.parametrize(("symbol", "source_api"), [("btc", "binance"), ("BTC", "Binance")])
def test_bronze_refuses_a_candle_key_spelt_otherwise_than_normalised(
    warehouse_url, symbol, source_api
):
    """Silver's staging view passes bronze's key through unchanged (migration 0023): a second
    spelling of one candle would otherwise be a second row of it in silver."""
    import psycopg

    with connect(warehouse_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(_CANDLE, (symbol, source_api))
    with connect(warehouse_url) as conn:
        conn.execute(_CANDLE, ("BTC", "binance"))  # the normalised spelling lands


def test_the_key_migration_names_offending_rows_instead_of_rewriting_them(warehouse_url):
    import psycopg

    from crypto_analytics.migrations import runner

    (normalise,) = [m for m in runner.available_migrations() if m.version == 23]
    with connect(warehouse_url) as conn:
        conn.execute(
            "alter table bronze.raw_crypto_prices drop constraint raw_crypto_prices_key_normalised"
        )
        conn.execute(_CANDLE, ("eth", "binance"))
        conn.commit()
        with pytest.raises(psycopg.errors.RaiseException, match=r"holds 1 row\(s\)"):
            conn.execute(normalise.sql)
        conn.rollback()
        assert conn.execute("select symbol from bronze.raw_crypto_prices").fetchall() == [("eth",)]


#: What silver's staging views pass through from these bronze tables with no test of their own
#: (dbt/models/silver/staging/_staging__models.yml says why): (primary key, other NOT NULL columns).
_ENFORCED_IN_BRONZE = {
    "bronze.price_changes": (["change_id"], {"symbol", "interval", "timestamp", "changed_at"}),
    "bronze.token_universe": (["symbol"], {"category"}),
    "bronze.ingestion_audit": (["batch_id"], set()),
    "bronze.quarantine": (["quarantine_id"], set()),
}


@pytest.mark.parametrize("table", sorted(_ENFORCED_IN_BRONZE))
def test_bronze_enforces_what_the_staging_views_pass_through(warehouse_url, table):
    key, not_null = _ENFORCED_IN_BRONZE[table]
    with connect(warehouse_url) as conn:
        primary = _primary_key(conn, table)
        nullable = {
            name
            for (name,) in conn.execute(
                "select attname from pg_attribute where attrelid = to_regclass(%s)"
                " and attnum > 0 and not attisdropped and not attnotnull",
                (table,),
            )
        }
    assert primary == key
    assert not (not_null & nullable)


def test_bronze_refuses_a_change_kind_silver_does_not_know(warehouse_url):
    import psycopg

    with connect(warehouse_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            'insert into bronze.price_changes (source_api, symbol, interval, "timestamp", change)'
            " values ('binance', 'BTC', '1d', '2024-01-01 00:00+00', 'upsert')"
        )
