"""The dashboard's role reads gold, including what dbt creates later and gold views over other
schemas, and nothing else; it cannot write; its password comes from the environment."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from crypto_analytics.config import get_settings
from crypto_analytics.contract import DASHBOARD_READER_ROLE
from crypto_analytics.dashboard_reader import reader_conninfo, set_reader_password
from crypto_analytics.migrations.runner import init_database

pytestmark = pytest.mark.integration


def _as_reader(url: str) -> psycopg.Connection:
    return psycopg.connect(url, user=DASHBOARD_READER_ROLE, autocommit=True)


def test_reader_reads_gold_created_after_the_migration_and_views_over_other_schemas(
    warehouse_url: str,
) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as owner:
        # as dbt does after `db init`: a new table in gold, and a gold view over another schema
        owner.execute("create table gold.tickers (symbol text, price double precision)")
        owner.execute("insert into gold.tickers values ('BTC', 67000)")
        owner.execute("create schema analytics_results")
        owner.execute(
            "create table analytics_results.forecasts (symbol text, point double precision)"
        )
        owner.execute("insert into analytics_results.forecasts values ('ETH', 3100)")
        owner.execute("create view gold.forecasts as select * from analytics_results.forecasts")
    with _as_reader(warehouse_url) as reader:
        assert reader.execute("select current_user").fetchone() == (DASHBOARD_READER_ROLE,)
        assert reader.execute("select price from gold.tickers").fetchall() == [(67000.0,)]
        assert reader.execute("select point from gold.forecasts").fetchall() == [(3100.0,)]
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("select * from analytics_results.forecasts")


def test_reader_can_read_nothing_but_gold(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as owner:
        owner.execute("create table silver.hidden (x int)")
    with _as_reader(warehouse_url) as reader:
        for relation in ("bronze.raw_crypto_prices", "bronze.ingestion_audit", "silver.hidden", "public.schema_migrations"):  # fmt: skip
            with pytest.raises(errors.InsufficientPrivilege):
                reader.execute(f"select 1 from {relation} limit 1")


def test_reader_cannot_write(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url, autocommit=True) as owner:
        owner.execute("create table gold.tickers (symbol text)")
        # even a grant by mistake would not let it write: its transactions are read-only
        owner.execute(f"grant insert on gold.tickers to {DASHBOARD_READER_ROLE}")
    with _as_reader(warehouse_url) as reader:
        assert reader.execute("show default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            reader.execute("insert into gold.tickers values ('BTC')")
        with pytest.raises(errors.ReadOnlySqlTransaction):
            reader.execute("create table gold.mine (x int)")
        # and with read-only switched off for the session, it still has no right to create
        reader.execute("set default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("create table gold.mine (x int)")


def test_db_init_twice_keeps_the_role_and_sets_its_password_from_the_environment(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_DB_PASSWORD", "reader-s3cret")
    get_settings.cache_clear()
    settings = get_settings()
    try:
        with psycopg.connect(warehouse_url) as conn:
            assert init_database(conn, settings) == []  # migrated already: the role survives
            verifier = conn.execute(
                "select rolpassword from pg_authid where rolname = %s", (DASHBOARD_READER_ROLE,)
            ).fetchone()
        assert verifier is not None and verifier[0].startswith("SCRAM-SHA-256$")
        assert "reader-s3cret" not in verifier[0]
    finally:
        with psycopg.connect(warehouse_url, autocommit=True) as owner:
            owner.execute(f"alter role {DASHBOARD_READER_ROLE} password null")


def test_without_a_password_nothing_is_changed(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        assert set_reader_password(conn, get_settings()) is False


def test_reader_connection_never_carries_the_owners_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRYPTO_DATABASE_URL", "postgresql://owner:owner-pw@db.example:6543/crypto")
    get_settings.cache_clear()
    conninfo = reader_conninfo(get_settings())
    assert "owner-pw" not in conninfo and "owner" not in conninfo
    assert f"user={DASHBOARD_READER_ROLE}" in conninfo
    assert "host=db.example" in conninfo and "port=6543" in conninfo and "dbname=crypto" in conninfo

    monkeypatch.setenv("DASHBOARD_DB_PASSWORD", "reader pw")
    get_settings.cache_clear()
    assert "password='reader pw'" in reader_conninfo(get_settings())
