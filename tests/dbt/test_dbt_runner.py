"""crypto_analytics.dbt_runner: dbt's connection comes from the one warehouse setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto_analytics.dbt_runner import (
    _with_project_flags,
    dbt_env,
    project_dir,
    result_views_selection,
)
from crypto_analytics.errors import ConfigError


def test_dbt_env_from_a_tcp_url(monkeypatch):
    monkeypatch.delenv("DBT_THREADS", raising=False)
    env = dbt_env("postgresql+psycopg://analyst:s%40cret@db.internal:6543/warehouse")
    assert env == {
        "DBT_HOST": "db.internal",
        "DBT_PORT": "6543",
        "DBT_USER": "analyst",
        "DBT_PASSWORD": "s@cret",
        "DBT_DBNAME": "warehouse",
        "DBT_THREADS": "2",
    }


def test_dbt_env_from_the_embedded_servers_socket_url(monkeypatch):
    """pgserver's URL names a Unix-socket folder as host=…: dbt gets that folder as DBT_HOST."""
    monkeypatch.setenv("DBT_THREADS", "4")
    env = dbt_env("postgresql://postgres:@/crypto?host=/srv/data/pg")
    assert (env["DBT_HOST"], env["DBT_PORT"], env["DBT_DBNAME"], env["DBT_THREADS"]) == (
        "/srv/data/pg", "5432", "crypto", "4",
    )  # fmt: skip


def test_dbt_env_follows_crypto_database_url(monkeypatch):
    monkeypatch.setenv("CRYPTO_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/crypto_x")
    from crypto_analytics.config import get_settings

    get_settings.cache_clear()
    assert dbt_env()["DBT_DBNAME"] == "crypto_x"


def test_project_dir_is_the_checkouts_dbt_folder_or_the_env_override(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("DBT_PROJECT_DIR", raising=False)
    assert (project_dir() / "dbt_project.yml").is_file()
    monkeypatch.setenv("DBT_PROJECT_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="no dbt project at"):
        project_dir()


def test_project_flags_are_added_once_and_only_where_dbt_accepts_them(tmp_path: Path):
    assert _with_project_flags(["build", "--selector", "silver"], tmp_path) == [
        "build", "--selector", "silver",
        "--project-dir", str(tmp_path), "--profiles-dir", str(tmp_path),
    ]  # fmt: skip
    assert _with_project_flags(["run", "--project-dir", "/x"], tmp_path) == [
        "run", "--project-dir", "/x", "--profiles-dir", str(tmp_path),
    ]  # fmt: skip
    assert _with_project_flags(["--version"], tmp_path) == ["--version"]


def test_result_views_of_an_unknown_area_are_refused_with_the_choices():
    with pytest.raises(
        ConfigError, match=r"unknown result views 'weather'; choose one of forecasting"
    ):
        result_views_selection("weather")
    assert result_views_selection("alerts")[:2] == ["--select", "path:models/gold/alerts"]
