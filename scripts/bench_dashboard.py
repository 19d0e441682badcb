"""Benchmark the dashboard in a real browser (`make bench`): time from navigation to the page's
main chart drawn, per page, on the full offline demo dataset. Target: under 2 s each.

In a fresh database created for the run (dropped afterwards unless --keep; or --url to use an
existing warehouse), `crypto-analytics demo` builds the demo (38 tokens, two years daily, 60 days
hourly, silver, gold, the portfolio run, forecasts), then the alert engine evaluates once (nothing
sent). A dashboard is started on it (the same command as
`make dashboard`) and Debian's Chromium (Playwright) visits each page; every page is visited
once first (the server's imports, the browser's script cache). Then, per page:

  cold   a full page load (new session) right after the serving cache is refreshed, as after
         a gold run: every query of the page goes to PostgreSQL;
  warm   a full page load with the query results cached (median of --repeats);
  menu   a click on the page's link in the sidebar of the open app, cache warm (median): what
         a user navigating the dashboard waits for.

"Drawn" means the Plotly trace of the element keyed `main_chart` is in the DOM
(crypto_analytics.dashboard_probe, shared with the browser tests). A page without its data
has no main chart and is reported as such.
The database server comes from CRYPTO_DATABASE_URL (required). Printing the figures is the point.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from crypto_analytics.dashboard_probe import (
    browser_page,
    chromium_path,
    pages,
    visit,
    visit_from_menu,
)
from crypto_analytics.dashboard_server import running_dashboard
from crypto_analytics.serving_cache import GENERATION_FILE, MemoryBackend
from crypto_analytics.warehouse import url_for_database

TARGET_SECONDS = 2.0


def _env(url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTO_", "DBT_", "MLFLOW_"))}
    env.pop("REDIS_URL", None)  # in-process cache: the refresh below is the generation file
    env.update(
        CRYPTO_DATABASE_URL=url,
        CRYPTO_DATA_DIR=str(tmp / "data"),
        CRYPTO_LAKE_DIR=str(tmp / "lake"),
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
    done = subprocess.run(
        [sys.executable, "-m", "crypto_analytics.cli", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"crypto-analytics {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def _build_demo(env: dict[str, str]) -> float:
    """The demo, then one pass of the alert engine (no delivery) so the Alerts page has data."""
    started = time.monotonic()
    _cli(env, "demo")
    _cli(env, "alerts", "evaluate", "--no-deliver")
    return time.monotonic() - started


def _fmt(seconds: float | None) -> str:
    return "no chart" if seconds is None else f"{seconds:6.2f}"


def _median(values: list[float | None]) -> float | None:
    measured = [v for v in values if v is not None]
    return statistics.median(measured) if measured else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an existing warehouse holding the demo (default: build one)")
    parser.add_argument("--repeats", type=int, default=3, help="warm and menu visits per page")
    parser.add_argument("--keep", action="store_true", help="keep the database built for the run")
    parser.add_argument("--screenshots", type=Path, help="save a screenshot per page here")
    args = parser.parse_args()
    if chromium_path() is None:
        raise SystemExit("no chromium: apt-get install chromium (or set CHROMIUM_PATH)")
    server = os.environ.get("CRYPTO_DATABASE_URL")
    if not server and not args.url:
        raise SystemExit("set CRYPTO_DATABASE_URL (the server the demo database is created on)")

    tmp = Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    name = None
    url = args.url
    if url is None:
        assert server
        name = f"crypto_bench_dash_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        url = url_for_database(server, name)
    env = _env(url, tmp)
    try:
        if name is not None:
            print(f"building the demo in database {name} ...", flush=True)
            print(f"demo built in {_build_demo(env):.0f} s", flush=True)
        generation = MemoryBackend(tmp / "data" / GENERATION_FILE)
        with running_dashboard(env, log_path=tmp / "streamlit.log") as base, browser_page() as page:
            for url_path, title in pages():  # warm-up: imports, browser script cache
                visit(page, base, url_path, title)
            rows = []
            for url_path, title in pages():
                generation.bump_generation()
                cold = visit(page, base, url_path, title, args.screenshots)
                warm = [
                    visit(page, base, url_path, title).seconds_to_chart for _ in range(args.repeats)
                ]
                rows.append([title, cold.seconds_to_chart, _median(warm), cold.notices])
            visit(page, base, "", "Live prices")
            menu: dict[str, list[float | None]] = {title: [] for _, title in pages()}
            for _ in range(args.repeats):
                for url_path, title in pages()[1:] + pages()[:1]:
                    menu[title].append(visit_from_menu(page, url_path, title).seconds_to_chart)
        print(f"\nnavigation -> main chart drawn, seconds (target < {TARGET_SECONDS:.0f} s); "
              f"medians of {args.repeats}; Chromium {chromium_path()}")  # fmt: skip
        print(f"{'page':22s} {'cold':>8s} {'warm':>8s} {'menu':>8s}  target")
        for title, cold_s, warm_s, notices in rows:
            menu_s = _median(menu[title])
            measured = [s for s in (cold_s, warm_s, menu_s) if s is not None]
            verdict = (
                "met" if measured and max(measured) < TARGET_SECONDS
                else "MISSED" if measured
                else "no data: " + (notices[0].splitlines()[-1][:60] if notices else "?")
            )  # fmt: skip
            print(
                f"{title:22s} {_fmt(cold_s):>8s} {_fmt(warm_s):>8s} {_fmt(menu_s):>8s}  {verdict}"
            )
    finally:
        if name is not None and not args.keep:
            with psycopg.connect(server, autocommit=True) as admin:  # type: ignore[arg-type]
                admin.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                )
        elif name is not None:
            print(f"kept database {name}")


if __name__ == "__main__":
    main()
