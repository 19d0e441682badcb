"""Without CRYPTO_DATABASE_URL the platform starts an embedded PostgreSQL under the data dir."""

from __future__ import annotations

import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.migrations.runner import available_migrations, init_database
from crypto_analytics.warehouse import connect, database_url, stop_embedded

pytestmark = pytest.mark.integration


def test_embedded_server_starts_migrates_and_persists(tmp_path, monkeypatch):
    monkeypatch.delenv("CRYPTO_DATABASE_URL", raising=False)
    monkeypatch.setenv("CRYPTO_DATA_DIR", str(tmp_path / "d"))
    get_settings.cache_clear()
    url = database_url()
    assert str(tmp_path / "d" / "pg") in url
    try:
        with connect(url) as conn:
            every = [m.version for m in available_migrations()]
            assert init_database(conn, get_settings()) == every
            (count,) = conn.execute("select count(*) from bronze.token_universe").fetchone()
        assert count == 38
        # A second process-level lookup reuses the running server and sees the same data.
        get_settings.cache_clear()
        with connect(database_url()) as conn:
            assert init_database(conn, get_settings()) == []
    finally:
        stop_embedded(get_settings())
    assert not (tmp_path / "d" / "pg" / "postmaster.pid").exists()
