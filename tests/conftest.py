"""Fixtures shared by every test: settings isolated per test, real Postgres, shared data.

Integration tests run against a real PostgreSQL given by CRYPTO_DATABASE_URL (the CI machine's
service). Each test session creates its own migrated template database, and each test that asks
for `warehouse_url` gets a fresh copy of it, so tests never see each other's rows and parallel
runs on one server never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from psycopg import sql

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.migrations.runner import init_database
from crypto_analytics.warehouse import url_for_database

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: the project must run without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not available ({SHARED_DATA} missing)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def stack() -> ModuleType:
    """scripts/stack.py (the local stack behind `make up`; a script, not an installed package),
    loaded as a module for tests/stack."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("stack", PROJECT_ROOT / "scripts" / "stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["stack"] = module  # its dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test writes its lake and data dir under tmp_path and sees fresh settings."""
    monkeypatch.setenv("CRYPTO_LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("CRYPTO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRYPTO_INGESTION__RETRY_BASE_SECONDS", "0.01")
    monkeypatch.setenv("CRYPTO_INGESTION__RETRY_MAX_SECONDS", "0.5")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings() -> Settings:
    return get_settings()


def _server_url() -> str | None:
    return os.environ.get("CRYPTO_DATABASE_URL")


@pytest.fixture(scope="session")
def _template_database() -> Iterator[str]:
    """A migrated database this session copies for each test; dropped at the end."""
    server = _server_url()
    if not server:
        pytest.skip("CRYPTO_DATABASE_URL is not set: integration tests need a real PostgreSQL")
    name = f"crypto_tmpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    get_settings.cache_clear()
    with psycopg.connect(url_for_database(server, name)) as conn:
        init_database(conn, get_settings())
    yield name
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@pytest.fixture
def warehouse_url(_template_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """URL of a fresh, migrated warehouse database for this test; CRYPTO_DATABASE_URL points at it."""
    server = _server_url()
    assert server
    name = f"crypto_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(_template_database)
            )
        )
    url = url_for_database(server, name)
    monkeypatch.setenv("CRYPTO_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


class RecordingSmtpHandler:
    """aiosmtpd handler that keeps every message it accepts (envelope and parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[object, object]] = []
        #: Answer the next N DATA commands with this reply instead of accepting (fault tests).
        self.reject_next: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        from email import message_from_bytes, policy

        if self.reject_next:
            return self.reject_next.pop(0)
        self.messages.append(
            (envelope, message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingSmtpHandler]:
    """A real SMTP server on localhost (aiosmtpd) with AUTH (user `reporter`, password
    `s3cret-pw`), and the settings pointed at it with security `none`."""
    import socket

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login,
            auth_data.password,
        ) == (b"reporter", b"s3cret-pw")
        return AuthResult(success=ok, handled=False)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = RecordingSmtpHandler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__PORT", str(port))
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__SECURITY", "none")
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__USERNAME", "reporter")
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__RECIPIENTS", '["quant@example.com"]')
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__RETRY_BASE_SECONDS", "0")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-pw")
    get_settings.cache_clear()
    try:
        yield handler
    finally:
        controller.stop()
        get_settings.cache_clear()


#: Folders whose tests share expensive session fixtures (a built demo warehouse, dbt-built
#: databases, Airflow's test database), or, for stack/, each start a whole local Airflow: under
#: pytest-xdist (`make test`: `-n 2 --dist loadgroup`) each folder is one unit of work on one
#: worker, so a fixture is built once and two stacks never compete for two cores. Other tests
#: are spread one module at a time. Handed out in this order, longest first, the rest after.
_ONE_WORKER_FOLDERS = ("stack", "dags", "dbt", "dashboard")


def _folder_unit(path: str) -> str:
    """The unit of work of a test: its folder's under tests/ (one of the above), else its file."""
    parts = Path(path).parts
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in _ONE_WORKER_FOLDERS:
        return f"tests/{parts[1]}"
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest units first, so the other worker fills in around tests/stack."""

    def rank(item: pytest.Item) -> int:
        unit = _folder_unit(item.nodeid.split("::", 1)[0])
        folder = unit.removeprefix("tests/")
        return _ONE_WORKER_FOLDERS.index(folder) if folder in _ONE_WORKER_FOLDERS else 99

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadgroup`: xdist's scope scheduler with the units above, in collection order.

    (xdist's own xdist_group markers do not work with pytest 9: they rename node ids through an
    attribute pytest 9 no longer reads.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FolderScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _folder_unit(nodeid.split("::", 1)[0])

    config.option.loadscopereorder = False
    return FolderScheduling(config, log)
