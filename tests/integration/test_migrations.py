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
        schemas = {r[0] for r in conn.execute("select schema_name from information_schema.schemata")}
        assert {"bronze", "silver", "gold"} <= schemas
        tables = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'bronze'"
            )
        }
        assert {
            "raw_crypto_prices", "raw_market_data", "raw_orderbook", "ingestion_audit",
            "quarantine", "watermarks", "token_universe",
        } <= tables
        universe = dict(conn.execute("select symbol, category from bronze.token_universe").fetchall())
        assert len(universe) == 38
        assert universe["BTC"] == "Layer 1" and universe["PEPE"] == "Meme"


def test_edited_migration_is_refused(warehouse_url, monkeypatch):
    from crypto_analytics.migrations import runner

    real = runner.available_migrations()
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in real]
    monkeypatch.setattr(runner, "available_migrations", lambda: edited)
    with connect(warehouse_url) as conn, pytest.raises(ConfigError, match="edited after it was applied"):
        migrate(conn)
