"""Warehouse URLs: every spelling users paste is accepted, anything else is refused clearly."""

from __future__ import annotations

import pytest

from crypto_analytics.errors import ConfigError
from crypto_analytics.warehouse import connection_params, normalise_url, url_for_database


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h:5433/db",
        "postgres://u:p@h:5433/db",
        "postgresql+psycopg2://u:p@h:5433/db",
        "postgresql+psycopg://u:p@h:5433/db",
    ],
)
def test_spellings_normalise_to_libpq(url):
    assert normalise_url(url) == "postgresql://u:p@h:5433/db"


def test_non_postgres_url_is_refused():
    with pytest.raises(ConfigError, match="must be a PostgreSQL URL.*'mysql'"):
        normalise_url("mysql://u@h/db")


def test_socket_url_params_and_other_database():
    url = "postgresql://postgres:@/postgres?host=/srv/pg"
    assert connection_params(url) == {
        "host": "/srv/pg",
        "port": "5432",
        "user": "postgres",
        "password": "",
        "dbname": "postgres",
    }
    assert url_for_database(url, "airflow") == "postgresql://postgres:@/airflow?host=/srv/pg"


def test_password_is_unquoted():
    assert connection_params("postgresql://u:p%40ss@127.0.0.1:5432/x")["password"] == "p@ss"


def test_every_connection_gets_timeouts_and_keepalives(settings):
    from crypto_analytics.warehouse import connection_options

    options = connection_options("postgresql://u@h/db", settings)
    assert options["connect_timeout"] == 10
    assert options["keepalives"] == 1
    assert options["options"] == "-c statement_timeout=900000 -c lock_timeout=120000"


def test_what_the_url_sets_wins(settings):
    from crypto_analytics.warehouse import connection_options

    options = connection_options(
        "postgresql://u@h/db?connect_timeout=3&options=-c%20statement_timeout%3D5s", settings
    )
    assert "connect_timeout" not in options  # libpq reads the URL's own
    assert options["options"] == "-c statement_timeout=5s -c lock_timeout=120000"
