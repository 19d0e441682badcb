"""Warehouses for the dashboard tests, built once per session and shared by every test here.

- `demo_warehouse`: the offline demo (`crypto-analytics demo`: synthetic market for the whole
  universe, silver and gold built by dbt, the portfolio optimised, forecasts, and one pass of
  the alert engine without delivery), in a database of its own;
- `built_empty_warehouse`: migrated and `dbt build` run, but nothing ingested (a fresh install
  whose pipeline ran before any data arrived);
- the root conftest's `warehouse_url`: migrated only, gold never built;
- `UNREACHABLE_URL`: a server that is not there.

The demo runs in a subprocess with its own lake, data dir and dbt target path, so it never
touches the checkout's dbt/target (which the DAG tests read) or another test's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from crypto_analytics.config import get_settings
from crypto_analytics.warehouse import url_for_database


def _server() -> str:
    server = os.environ.get("CRYPTO_DATABASE_URL")
    if not server:
        pytest.skip("CRYPTO_DATABASE_URL is not set: the dashboard tests need a real PostgreSQL")
    return server


def _isolated_env(tmp: Path, url: str) -> dict[str, str]:
    """The environment of a subprocess working on `url` with files only under `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTO_", "DBT_", "MLFLOW_"))}
    env.pop("REDIS_URL", None)
    env.update(
        CRYPTO_DATABASE_URL=url,
        CRYPTO_LAKE_DIR=str(tmp / "lake"),
        CRYPTO_DATA_DIR=str(tmp / "data"),
        DBT_TARGET_PATH=str(tmp / "dbt_target"),
        DBT_LOG_PATH=str(tmp / "dbt_logs"),
        # the demo's forecasting and portfolio report write here, not to the checkout's data/
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
        CRYPTO_ML__MLFLOW__ARTIFACTS_DIR=str(tmp / "mlflow"),
        CRYPTO_ML__WORK_DIR=str(tmp / "ml"),
        CRYPTO_PORTFOLIO__REBALANCING__REPORTS_DIR=str(tmp / "reports"),
    )
    return env


def _cli(env: dict[str, str], *args: str) -> None:
    command = [sys.executable, "-m", "crypto_analytics.cli", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def _databases() -> Iterator[Callable[[], str]]:
    """Creates databases on the test server; drops them all at the end of the session."""
    server = _server()
    created: list[str] = []

    def create() -> str:
        name = f"crypto_dash_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        return url_for_database(server, name)

    yield create
    with psycopg.connect(server, autocommit=True) as admin:
        for name in created:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def demo_warehouse(_databases: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a database holding the offline demo, built once per session (~1-2 min)."""
    url = _databases()
    env = _isolated_env(tmp_path_factory.mktemp("demo"), url)
    _cli(env, "demo")  # its last step is the alert engine's first pass (nothing delivered)
    get_settings.cache_clear()
    return url


@pytest.fixture(scope="session")
def built_empty_warehouse(
    _databases: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """URL of a database that is migrated and dbt-built, with nothing ingested."""
    url = _databases()
    env = _isolated_env(tmp_path_factory.mktemp("built_empty"), url)
    _cli(env, "db", "init")
    _cli(env, "dbt", "build", "--quiet")
    get_settings.cache_clear()
    return url


@pytest.fixture
def use_warehouse(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point this test's settings (and so the dashboard's queries) at a warehouse URL."""

    def point(url: str) -> None:
        monkeypatch.setenv("CRYPTO_DATABASE_URL", url)
        monkeypatch.delenv("REDIS_URL", raising=False)
        monkeypatch.delenv("DASHBOARD_DB_PASSWORD", raising=False)
        get_settings.cache_clear()

    return point
