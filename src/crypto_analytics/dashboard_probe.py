"""Open the dashboard's pages in a real browser, time them and collect what went wrong.

Why a browser and not only AppTest: AppTest runs the page scripts, but only a browser proves that
the front end draws the charts. The browser tests (tests/dashboard) and the benchmark
(scripts/bench_dashboard.py) share this module, so both wait for the same thing: the app idle
(`stApp` with script state notRunning) and the page's main chart (the element keyed
`main_chart`) holding a drawn Plotly trace. Streamlit exception boxes are collected, not missed.

Chromium is Debian's (`apt-get install chromium`; Playwright's own browser download cannot run
here), driven by the Python `playwright` package. Pass CHROMIUM_PATH to use another binary.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto_analytics.contract import DASHBOARD_PAGES

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
#: A drawn trace of the page's main chart: SVG trace groups, or a heatmap's image layer.
MAIN_CHART_DRAWN = (
    '.st-key-main_chart[data-stale="false"] .js-plotly-plot .main-svg :is(g.trace, g.hm)'
)
EXCEPTION = '[data-testid="stException"]'
NOTICE = '[data-testid="stAlert"]'
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1440, 1000


@dataclass(frozen=True)
class PageVisit:
    """What one visit of a page found."""

    url_path: str
    title: str
    #: Seconds from starting the navigation to the main chart drawn; None if it never drew.
    seconds_to_chart: float | None
    exceptions: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def chromium_path() -> str | None:
    """CHROMIUM_PATH, else `chromium` on PATH; None when there is no browser."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh Chromium page (1440 x 1000); the browser closes at the end of the block."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("no chromium: apt-get install chromium (or set CHROMIUM_PATH)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT})
            yield page
        finally:
            browser.close()


def _collect(page: Any, selector: str) -> list[str]:
    return [str(text).strip() for text in page.locator(selector).all_inner_texts()]


#: Resolves to "chart" once the main chart is drawn, or "none" once the app has been idle for
#: IDLE_WITHOUT_CHART_MS with a page title and no main-chart element (a page showing a notice).
_CHART_OR_IDLE = """
([chart, idleSelector, quietMs]) => {
    if (document.querySelector(chart)) return "chart";
    const idle = document.querySelector(idleSelector) && document.querySelector("h1")
        && !document.querySelector(".st-key-main_chart");
    if (!idle) { window.__probeIdleSince = null; return false; }
    window.__probeIdleSince = window.__probeIdleSince || performance.now();
    return performance.now() - window.__probeIdleSince > quietMs ? "none" : false;
}
"""
IDLE_WITHOUT_CHART_MS = 1500


def _wait_for_chart(page: Any, started: float, timeout_s: float) -> float | None:
    """Seconds from `started` to the main chart drawn; None when the page has no main chart
    (it settled without one) or it never drew within the timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        outcome = page.wait_for_function(
            _CHART_OR_IDLE,
            arg=[MAIN_CHART_DRAWN, APP_IDLE, IDLE_WITHOUT_CHART_MS],
            timeout=timeout_s * 1000,
            polling="raf",
        )
    except PlaywrightTimeout:
        return None
    if outcome.json_value() != "chart":
        return None
    return time.monotonic() - started


def _finish(
    page: Any, url_path: str, title: str, seconds: float | None, screenshots: Path | None
) -> PageVisit:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # the rest of the page (tables, other charts) finishes after the main chart
        page.wait_for_selector(APP_IDLE, timeout=30_000)
    except PlaywrightTimeout:
        pass
    shot = None
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
        shot = screenshots / f"{url_path or 'live'}.png"
        page.screenshot(path=str(shot), full_page=True)
    return PageVisit(
        url_path, title, seconds, _collect(page, EXCEPTION), _collect(page, NOTICE), shot
    )


def visit(
    page: Any,
    base_url: str,
    url_path: str,
    title: str,
    screenshots: Path | None = None,
    timeout_s: float = 60.0,
) -> PageVisit:
    """Load a page by URL (a full load: new session, fresh websocket) and wait for its chart."""
    started = time.monotonic()
    page.goto(f"{base_url}/{url_path}", wait_until="commit")
    seconds = _wait_for_chart(page, started, timeout_s)
    return _finish(page, url_path, title, seconds, screenshots)


def visit_from_menu(
    page: Any,
    url_path: str,
    title: str,
    screenshots: Path | None = None,
    timeout_s: float = 60.0,
) -> PageVisit:
    """Click the page's link in the sidebar (the app is already open) and wait for its chart.

    The previous page's chart carries the same key, so the wait starts once it is gone."""
    page.wait_for_selector(APP_IDLE, timeout=timeout_s * 1000)
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
    started = time.monotonic()
    link.click()
    page.wait_for_function(
        "title => [...document.querySelectorAll('h1')].some(h => h.innerText.trim() === title)",
        arg=title,
        timeout=timeout_s * 1000,
    )
    seconds = _wait_for_chart(page, started, timeout_s)
    return _finish(page, url_path, title, seconds, screenshots)


def pages() -> list[tuple[str, str]]:
    """(URL path, title) of every page, in menu order."""
    return [(url_path, title) for _, url_path, title, _ in DASHBOARD_PAGES]
