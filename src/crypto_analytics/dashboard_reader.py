"""The dashboard's read-only login: its password at `db init`, and the URL the dashboard uses.

Why a role of its own: the dashboard is the one component facing people, so it must not be able
to change the warehouse or see what gold does not publish. Migration 0007 creates the role with
SELECT on gold only (default privileges keep tables dbt recreates readable); this module sets its
password from DASHBOARD_DB_PASSWORD, which cannot live in a migration (migrations are in git).

The password is sent as a SCRAM-SHA-256 verifier computed client-side by libpq, so the clear text
never reaches the server's statement log.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from crypto_analytics.config import Settings
from crypto_analytics.contract import DASHBOARD_READER_ROLE
from crypto_analytics.warehouse import database_url

log = logging.getLogger(__name__)


def set_reader_password(conn: psycopg.Connection, settings: Settings) -> bool:
    """Give the reader role DASHBOARD_DB_PASSWORD; returns False (and changes nothing) when unset."""
    if settings.dashboard_db_password is None:
        log.info("DASHBOARD_DB_PASSWORD is unset: %s keeps no password", DASHBOARD_READER_ROLE)
        return False
    verifier = conn.pgconn.encrypt_password(
        settings.dashboard_db_password.get_secret_value().encode(),
        DASHBOARD_READER_ROLE.encode(),
        b"scram-sha-256",
    )
    with conn.transaction():
        conn.execute(
            sql.SQL("alter role {} with login password {}").format(
                sql.Identifier(DASHBOARD_READER_ROLE), sql.Literal(verifier.decode())
            )
        )
    log.info("password of %s set from DASHBOARD_DB_PASSWORD", DASHBOARD_READER_ROLE)
    return True


def reader_conninfo(settings: Settings) -> str:
    """The warehouse's connection string with the reader role (and its password, if any) in
    place of the owner's: the owner's password in CRYPTO_DATABASE_URL is never passed on."""
    params = conninfo_to_dict(database_url(settings))
    params.pop("password", None)
    params["user"] = DASHBOARD_READER_ROLE
    if settings.dashboard_db_password is not None:
        params["password"] = settings.dashboard_db_password.get_secret_value()
    return make_conninfo("", **params)
