"""Where the warehouse is and how to connect to it.

`CRYPTO_DATABASE_URL` wins when set. Otherwise an embedded PostgreSQL (pgserver) is started under
the data directory, so a newcomer needs no server: it keeps running after the process exits, so
Airflow, dbt and the CLI all reach the same one through its Unix socket.

Every connection gets a connect timeout (a server that accepts the connection but never answers
used to hang the caller forever), TCP keepalives (a server that vanishes mid-statement is noticed)
and statement and lock timeouts (a statement blocked behind another session's lock ends with a
clear error instead of waiting without end): see `warehouse` in config.yaml. A server that cannot
be reached at all fails at once, naming host and port but never the password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import ConfigError, WarehouseUnavailable
from crypto_analytics.redaction import redact

log = logging.getLogger(__name__)

_ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def normalise_url(url: str) -> str:
    """A libpq URL (postgresql://…) from any of the spellings users paste (SQLAlchemy's included)."""
    parts = urlsplit(url)
    if parts.scheme not in _ACCEPTED_SCHEMES:
        raise ConfigError(
            f"CRYPTO_DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:port/db); "
            f"got scheme {parts.scheme!r}"
        )
    return urlunsplit(("postgresql", *parts[1:]))


def embedded_data_dir(settings: Settings) -> Path:
    return settings.data_path / "pg"


def start_embedded(settings: Settings) -> str:
    """Start (or reuse) the embedded PostgreSQL under .data/pg and return its URL."""
    import pgserver  # heavy import, only needed without CRYPTO_DATABASE_URL

    pgdata = embedded_data_dir(settings)
    pgdata.mkdir(parents=True, exist_ok=True)
    log.info("CRYPTO_DATABASE_URL is unset: using embedded PostgreSQL in %s", pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    return str(server.get_uri())


def stop_embedded(settings: Settings) -> None:
    """Stop the embedded server (`crypto-analytics db stop`); its data stays under .data/pg."""
    import pgserver

    server = pgserver.get_server(embedded_data_dir(settings), cleanup_mode=None)
    server.cleanup_mode = "stop"  # the cached handle was opened to keep running; now stop it
    server.cleanup()


def database_url(settings: Settings | None = None) -> str:
    """The warehouse URL: CRYPTO_DATABASE_URL, else the embedded server's."""
    settings = settings or get_settings()
    if settings.database_url is not None:
        return normalise_url(settings.database_url.get_secret_value())
    return start_embedded(settings)


def url_for_database(url: str, dbname: str) -> str:
    """The same server, another database (Airflow's metadata and MLflow's store live beside ours)."""
    parts = urlsplit(normalise_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def connection_params(url: str) -> dict[str, str]:
    """host/port/user/password/dbname of a URL, for tools that want them apart (dbt profiles)."""
    parts = urlsplit(normalise_url(url))
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    return {
        "host": host,
        "port": str(parts.port or query.get("port", ["5432"])[0]),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
    }


def connection_options(url: str, settings: Settings) -> dict[str, object]:
    """The timeouts and keepalives every warehouse connection gets; values the URL sets win."""
    given = conninfo_to_dict(url)
    config = settings.warehouse
    options: dict[str, object] = {
        "connect_timeout": max(1, round(config.connect_timeout_seconds)),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    options = {key: value for key, value in options.items() if key not in given}
    server_settings = {
        "statement_timeout": round(config.statement_timeout_seconds * 1000),
        "lock_timeout": round(config.lock_timeout_seconds * 1000),
    }
    existing = str(given.get("options") or "")
    extra = " ".join(f"-c {k}={v}" for k, v in server_settings.items() if k not in existing)
    if extra:
        options["options"] = f"{existing} {extra}".strip()
    return options


def _where(url: str) -> str:
    """host:port/database of a URL, for messages (never user or password)."""
    info = conninfo_to_dict(url)
    host = info.get("host") or "localhost"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


def _explain(exc: psycopg.OperationalError, url: str, timeout: object) -> str:
    text = " ".join(str(exc).split())
    where = _where(url)
    lowered = text.lower()
    if isinstance(exc, psycopg.errors.ConnectionTimeout) or "timeout expired" in lowered:
        return (
            f"the warehouse at {where} did not answer within {timeout}s "
            "(warehouse.connect_timeout_seconds): is the host and port a PostgreSQL server?"
        )
    if "connection refused" in lowered:
        return f"cannot reach the warehouse at {where}: it refused the connection (is PostgreSQL running there?)"
    if (
        "resolve host" in lowered
        or "translate host name" in lowered
        or "name or service" in lowered
    ):
        return f"cannot reach the warehouse at {where}: its host name does not resolve"
    return f"cannot connect to the warehouse at {where}: {text}"


def connect(url: str | None = None, **kwargs: object) -> psycopg.Connection:
    """A new psycopg connection to the warehouse (the caller closes it), with the timeouts of
    `connection_options`. WarehouseUnavailable, naming host and port, when it cannot connect."""
    target = url or database_url()
    options = {**connection_options(target, get_settings()), **kwargs}
    try:
        return psycopg.connect(target, **options)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        timeout = options.get("connect_timeout") or conninfo_to_dict(target).get("connect_timeout")
        raise WarehouseUnavailable(redact(_explain(exc, target, timeout))) from None


@contextmanager
def transaction(url: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection whose work commits on success and rolls back on any exception."""
    with connect(url) as conn, conn.transaction():
        yield conn


def ensure_database(url: str, dbname: str) -> str:
    """Create a database on the warehouse server if missing; returns its URL."""
    with connect(url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
            log.info("created database %s", dbname)
    return url_for_database(url, dbname)
