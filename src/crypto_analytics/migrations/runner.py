"""Apply the versioned migrations and publish the token universe.

Why our own twenty lines instead of Alembic: the schema is plain SQL owned by the platform, dbt
owns everything downstream, and we only need "apply each file once, in order, atomically, and
refuse if an applied file was edited".
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources

import psycopg

from crypto_analytics.config import Settings
from crypto_analytics.dashboard_reader import set_reader_password
from crypto_analytics.errors import ConfigError

log = logging.getLogger(__name__)

# Serialises concurrent `db init` runs (two Airflow workers starting at once).
_ADVISORY_LOCK_KEY = 0x43525950544F  # "CRYPTO"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """The migrations shipped with the package, ordered by version."""
    found = []
    for entry in resources.files("crypto_analytics.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(version), name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply pending migrations; returns the versions applied now (empty when up to date)."""
    applied_now: list[int] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
        conn.execute(
            """
            create table if not exists public.schema_migrations (
                version integer primary key,
                name text not null,
                checksum text not null,
                applied_at timestamptz not null default now()
            )
            """
        )
        done: dict[int, str] = dict(
            conn.execute("select version, checksum from public.schema_migrations").fetchall()
        )
        for migration in available_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise ConfigError(
                        f"migration {migration.version:04d}_{migration.name} was edited after it "
                        "was applied; add a new migration instead"
                    )
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            conn.execute(migration.sql.encode())
            conn.execute(
                "insert into public.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration.version)
    return applied_now


def publish_universe(conn: psycopg.Connection, settings: Settings) -> int:
    """Replace bronze.token_universe with the configured tokens (one transaction)."""
    rows = [
        (
            t.symbol,
            t.name,
            t.category,
            t.stablecoin,
            t.status,
            t.yahoo,
            t.coingecko,
            t.exchange,
            json.dumps(t.unavailable),
        )
        for t in settings.tokens
    ]
    with conn.transaction():
        conn.execute("delete from bronze.token_universe")
        with conn.cursor() as cur:
            cur.executemany(
                """
                insert into bronze.token_universe
                    (symbol, name, category, is_stablecoin, status, yahoo_ticker, coingecko_id,
                     exchange_pair, unavailable)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                rows,
            )
    return len(rows)


def init_database(conn: psycopg.Connection, settings: Settings) -> list[int]:
    """`crypto-analytics db init`: migrations, then the universe, then the dashboard reader's
    password (DASHBOARD_DB_PASSWORD). Safe to run any number of times."""
    applied = migrate(conn)
    publish_universe(conn, settings)
    set_reader_password(conn, settings)
    return applied
