"""The dashboard in a real browser: Debian's Chromium driven by Playwright loads every page of a
dashboard serving the demo warehouse, waits for the main chart to be drawn, fails on any
Streamlit exception box, and saves a screenshot per page (under the test's tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto_analytics.dashboard_probe import chromium_path, pages, visit, visit_from_menu
from crypto_analytics.dashboard_server import running_dashboard

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_path() is None,
        reason="chromium is not installed: apt-get install chromium (.ci/run installs it)",
    ),
]

#: Pages whose data the demo always builds.
DEMO_CHARTED = {"", "technical", "correlation", "categories", "portfolio", "health"}
#: Pages whose data other jobs produce (the demo runs the forecasting; alerts need the engine).
PRODUCED_BY = {"predictions": "gold.price_predictions", "alerts": "gold.alerts"}


def _charted(url: str) -> set[str]:
    """The pages that must draw their main chart on this warehouse."""
    import psycopg

    charted = set(DEMO_CHARTED)
    with psycopg.connect(url) as conn:
        for page, relation in PRODUCED_BY.items():
            if conn.execute("select to_regclass(%s)", (relation,)).fetchone() != (None,):
                if conn.execute(f"select exists (select 1 from {relation})").fetchone() == (True,):
                    charted.add(page)
    return charted


#: Generous: the machines are small and shared; speed is measured by scripts/bench_dashboard.py.
TIMEOUT_S = 90.0


def _env(url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTO_")}
    env.pop("REDIS_URL", None)
    env.update(CRYPTO_DATABASE_URL=url, CRYPTO_DATA_DIR=str(tmp / "data"))
    return env


@pytest.fixture(scope="module")
def demo_dashboard(demo_warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser")
    with running_dashboard(_env(demo_warehouse, tmp), log_path=tmp / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from crypto_analytics.dashboard_probe import browser_page

    with browser_page() as page:
        yield page


@pytest.mark.parametrize(("url_path", "title"), pages(), ids=[u or "live" for u, _ in pages()])
def test_every_page_loads_and_draws_in_chromium(
    demo_warehouse: str,
    demo_dashboard: str,
    browser: object,
    url_path: str,
    title: str,
    tmp_path: Path,
) -> None:
    result = visit(browser, demo_dashboard, url_path, title, tmp_path, TIMEOUT_S)
    assert not result.exceptions, result.exceptions
    assert result.screenshot is not None and result.screenshot.stat().st_size > 20_000
    if url_path in _charted(demo_warehouse):
        assert result.seconds_to_chart is not None, f"{title}: main chart never drawn"
    else:  # no data from the job that fills the page: it says what to run
        assert result.seconds_to_chart is None
        assert any("yet" in notice or "No alert fired" in notice for notice in result.notices), (
            result.notices
        )


def test_navigating_from_the_menu_draws_each_page(
    demo_warehouse: str, demo_dashboard: str, browser: object, tmp_path: Path
) -> None:
    charted = _charted(demo_warehouse)
    visit(browser, demo_dashboard, "", "Live prices", None, TIMEOUT_S)
    for url_path, title in pages()[1:] + pages()[:1]:
        result = visit_from_menu(browser, url_path, title, tmp_path / "menu", TIMEOUT_S)
        assert not result.exceptions, (title, result.exceptions)
        if url_path in charted:
            assert result.seconds_to_chart is not None, f"{title}: main chart never drawn"


def test_an_unreachable_warehouse_is_one_message_in_the_browser(
    tmp_path: Path, browser: object
) -> None:
    env = _env("postgresql://postgres@127.0.0.1:1/nowhere", tmp_path)
    with running_dashboard(env, log_path=tmp_path / "streamlit.log") as url:
        result = visit(browser, url, "technical", "Technical analysis", tmp_path, TIMEOUT_S)
    assert not result.exceptions
    assert result.seconds_to_chart is None
    assert [n for n in result.notices if "cannot reach the warehouse" in n], result.notices
