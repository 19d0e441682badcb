"""A scratch warehouse database for the scripts that measure on real or synthetic data
(evaluate_real_history.py, bench_ml.py).

`scratch_database(server, name)` (re)creates `name` on the warehouse server, applies the
platform's migrations and points CRYPTO_DATABASE_URL (and the cached settings) at it while the
block runs; afterwards it restores the variable and drops the database unless `keep`, so a run
that fails half-way leaves neither behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@contextmanager
def scratch_database(server_url: str, name: str, *, keep: bool = False) -> Iterator[str]:
    """The migrated database's URL, the platform's warehouse while the block runs."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.migrations.runner import init_database
    from crypto_analytics.warehouse import url_for_database

    drop_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = url_for_database(server_url, name)
    previous = os.environ.get("CRYPTO_DATABASE_URL")
    os.environ["CRYPTO_DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        with psycopg.connect(url) as conn:
            init_database(conn, get_settings())
        yield url
    finally:
        if previous is None:
            os.environ.pop("CRYPTO_DATABASE_URL", None)
        else:
            os.environ["CRYPTO_DATABASE_URL"] = previous
        get_settings.cache_clear()
        if not keep:
            drop_database(server_url, name)
