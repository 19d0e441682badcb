"""Benchmark the dbt project (`make bench`): a full build, then incremental builds after one new
hour and after the rest of that day.

In a fresh database created for the run (dropped afterwards unless --keep), bronze is filled
from the offline synthetic source through the platform's loader (binary COPY): daily candles
and daily CoinGecko-style market snapshots for the whole universe (38 tokens) over 6 years, and
hourly candles over 5 years for BTC and ETH (today's size, ~254k rows) or, with
`--hourly-symbols all`, for the whole universe (10x: ~1.8M rows), in one load each. Then:

  1. `dbt parse` (warm-up: dbt's one-off import and manifest cost, reported apart);
  2. `dbt build` on a warehouse holding only bronze (full: every model and data test);
  3. one more hour lands (an hourly candle per hourly token), `dbt build` (incremental);
  4. the rest of that day lands (its other hours, daily candles, snapshots), `dbt build` again.

`--compare-scale` runs today's size and the 10x history one after the other and prints the
incremental builds side by side: cost must follow new data, not history (target: the 10x
incremental build within 1.2x of today's).

Parse and builds run in the scheduled (Airflow) mode, the production command:
`dbt build --exclude-resource-type unit_test --vars '{"incremental_tests": true}'` less what the
layers' scheduled builds leave out (crypto_analytics.contract.SCHEDULED_DBT_VARS and
DBT_LAYER_EXCLUDES). With that var the data tests of the large
incremental tables read only the rows no passing test run has checked yet
(dbt/macros/tests/untested_rows.sql): the full build still tests every row (all are new), the
incremental ones the rows they wrote. `--all-rows` times the mode of builds run by hand instead
(no var: every test reads its whole table). Unit tests check SQL logic on fixed inputs, so they
belong to CI (the pytest suite runs them on every `dbt build` it makes) and re-running them on
every scheduled build checks nothing new; `--with-unit-tests` times the builds with them.
Seconds are wall clock of the dbtRunner call, threads from DBT_THREADS (default 2). The server
comes from CRYPTO_DATABASE_URL, else the embedded one. Printing the figures is the point here.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from crypto_analytics.config import Settings, Token, get_settings
from crypto_analytics.contract import DBT_LAYER_EXCLUDES, SCHEDULED_DBT_VARS
from crypto_analytics.dbt_runner import run_dbt, vars_args
from crypto_analytics.ingestion.frames import Dataset
from crypto_analytics.ingestion.loader import load_batch
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource
from crypto_analytics.migrations.runner import init_database
from crypto_analytics.warehouse import database_url, url_for_database

log = logging.getLogger("bench_dbt")

TARGET_FULL_SECONDS = 60.0
TARGET_RATIO = 0.25
TARGET_SCALE_RATIO = 1.2
#: What the scheduled layer builds leave out (contract.DBT_LAYER_EXCLUDES): gold's views over
#: Python-written results, built by the DAGs that write them, and the tests of SQL invariants.
SCHEDULED_EXCLUDES = sorted({e for excluded in DBT_LAYER_EXCLUDES.values() for e in excluded})
HOURLY_SYMBOLS = ("BTC", "ETH")
HOUR = timedelta(hours=1)
TARGET_PATH = "target_bench"  # dbt/target_bench: git-ignored, never another run's folder
DAY = timedelta(days=1)


def _load(
    url: str, source: str, dataset: Dataset, interval: str | None, frame: pd.DataFrame
) -> int:
    """One batch through the platform's loader (audit, COPY, watermarks in one transaction)."""
    with psycopg.connect(url, autocommit=True) as conn:
        report = load_batch(
            conn,
            batch_id=uuid.uuid4(),
            source_api=source,
            dataset=dataset,
            interval=interval,
            valid=frame,
            rejected=None,
            raw_payload_path=None,
        )
    return report.rows_inserted


def load_window(
    url: str,
    source: SyntheticSource,
    tokens: list[Token],
    hourly: list[Token],
    windows: dict[str, tuple[datetime, datetime]],
) -> int:
    """Synthetic candles and snapshots for the windows {'1d'|'1h'|'market': [start, end)}; an
    empty window lands nothing."""
    landed = 0
    for interval, chosen in (("1d", tokens), ("1h", hourly)):
        start, end = windows[interval]
        if start >= end:
            continue
        frame = pd.concat(
            [source.fetch_ohlcv(t, interval, start, end).frame for t in chosen], ignore_index=True
        )
        landed += _load(url, source.source_api, Dataset.OHLCV, interval, frame)
    start, end = windows["market"]
    if start < end:
        market = source.fetch_market_data(tokens, start, end).frame
        landed += _load(url, source.source_api, Dataset.MARKET, None, market)
    return landed


def analyze_bronze(url: str) -> None:
    """Fresh planner statistics after the bulk load, as autovacuum would give them later.

    History is not re-stamped "as if ingested live": the models' watermark is the exact
    ingestion horizon (dbt/macros/incremental_horizon.sql), so a build after a large load does
    not recompute it however recent its stamps, and an UPDATE of bronze would now be logged as a
    correction of every row (bronze.price_changes) and recomputed as one."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze bronze.raw_crypto_prices")
        conn.execute("vacuum analyze bronze.raw_market_data")


def timed(what: str, action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    log.info("%s: %.1f s", what, seconds)
    return seconds, result


def node_seconds(result: Any) -> dict[str, float]:
    """Execution seconds summed per node kind (model, test, unit_test) from dbt's results:
    where a build's time goes (summed over threads, so it can exceed the wall clock)."""
    totals: dict[str, float] = {}
    for node in result.result.results:
        kind = node.node.resource_type
        totals[str(kind)] = totals.get(str(kind), 0.0) + node.execution_time
    return totals


def run(
    settings: Settings,
    daily_years: int,
    hourly_years: int,
    keep: bool,
    unit_tests: bool,
    target_path: str = TARGET_PATH,
    all_rows: bool = False,
    hourly_symbols: tuple[str, ...] = HOURLY_SYMBOLS,
) -> dict[str, float]:
    server = database_url(settings)
    name = f"crypto_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = url_for_database(server, name)
    try:
        with psycopg.connect(url) as conn:
            init_database(conn, settings)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        new_day = today - DAY  # the last closed daily candle: it arrives after the full build
        source = SyntheticSource(settings, clock=lambda: today)
        origin = source.origin
        daily_start = max(origin, new_day - timedelta(days=365 * daily_years))
        hourly_start = max(origin, new_day - timedelta(days=365 * hourly_years))
        tokens = list(settings.tokens)
        hourly = [settings.token(s) for s in hourly_symbols]

        started = time.perf_counter()
        history = load_window(
            url,
            source,
            tokens,
            hourly,
            {
                "1d": (daily_start, new_day),
                "1h": (hourly_start, new_day),
                # a snapshot at D 00:00 is the close of D - 1: history's closes end at new_day
                "market": (daily_start + DAY, new_day + timedelta(seconds=1)),
            },
        )
        analyze_bronze(url)
        load_seconds = time.perf_counter() - started
        log.info(
            "bronze: %d rows (%d tokens daily from %s, %s hourly from %s) in %.1f s",
            history,
            len(tokens),
            daily_start.date(),
            f"{len(hourly)} tokens",
            hourly_start.date(),
            load_seconds,
        )

        target = ["--target-path", target_path]
        build = ["build", *target]
        if not all_rows:
            target += vars_args(SCHEDULED_DBT_VARS)
            build += [*vars_args(SCHEDULED_DBT_VARS), "--exclude", *SCHEDULED_EXCLUDES]
        if not unit_tests:
            build += ["--exclude-resource-type", "unit_test"]
        parse, _ = timed("dbt parse", lambda: run_dbt(["parse", *target], url=url))
        full, full_result = timed("dbt build (full)", lambda: run_dbt(build, url=url))
        # an empty window lands nothing: the new hour is hourly candles only
        landed = load_window(
            url, source, tokens, hourly,
            {"1d": (new_day, new_day), "1h": (new_day, new_day + HOUR), "market": (today, today)},
        )  # fmt: skip
        log.info("one more hour: %d rows", landed)
        incremental_hour, hour_result = timed(
            "dbt build (incremental, one hour)", lambda: run_dbt(build, url=url)
        )
        landed = load_window(
            url, source, tokens, hourly,
            {
                "1d": (new_day, today),
                "1h": (new_day + HOUR, today),
                "market": (today, today + timedelta(seconds=1)),
            },
        )  # fmt: skip
        log.info("the rest of the day: %d rows", landed)
        incremental, incremental_result = timed(
            "dbt build (incremental, one day)", lambda: run_dbt(build, url=url)
        )
        with psycopg.connect(url) as conn:
            newest = conn.execute("select max(date) from gold.daily_crypto_metrics").fetchone()
        if not newest or newest[0] != new_day.date():
            raise RuntimeError(f"the new day {new_day.date()} did not reach gold (newest {newest})")
        figures = {
            "bronze_rows": float(history),
            "load_seconds": load_seconds,
            "parse_seconds": parse,
            "full_seconds": full,
            "incremental_seconds": incremental,
            "incremental_hour_seconds": incremental_hour,
        }
        for run_name, result in (
            ("full", full_result),
            ("incremental_hour", hour_result),
            ("incremental", incremental_result),
        ):
            for kind, seconds in node_seconds(result).items():
                figures[f"{run_name}_{kind}_seconds"] = seconds
        for node in incremental_result.result.results:  # per node, for --compare-scale
            figures[f"node:{node.node.unique_id}"] = node.execution_time
        return figures
    finally:
        if keep:
            log.info("kept database %s", name)
        else:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                )


def _print_run(figures: dict[str, float], command: str, mode: str) -> None:
    ratio = figures["incremental_seconds"] / figures["full_seconds"]
    print(f"builds                    {command}")
    print(f"mode                      {mode}")
    print(f"bronze rows loaded        {figures['bronze_rows']:>10,.0f}")
    print(f"dbt parse (warm-up)       {figures['parse_seconds']:>10.1f} s")
    print(
        f"dbt build, full           {figures['full_seconds']:>10.1f} s"
        f"   (target < {TARGET_FULL_SECONDS:.0f} s: "
        f"{'met' if figures['full_seconds'] < TARGET_FULL_SECONDS else 'MISSED'})"
    )
    print(f"dbt build, one new hour   {figures['incremental_hour_seconds']:>10.1f} s")
    print(f"dbt build, one new day    {figures['incremental_seconds']:>10.1f} s")
    print(
        f"new day / full            {ratio:>10.2f}     (target <= {TARGET_RATIO}: "
        f"{'met' if ratio <= TARGET_RATIO else 'MISSED'})"
    )
    print("node seconds (summed over threads)      full   one hour   one day")
    for kind in ("model", "test", "unit_test"):
        full_kind = figures.get(f"full_{kind}_seconds")
        if full_kind is not None:
            hour_kind = figures.get(f"incremental_hour_{kind}_seconds", 0.0)
            day_kind = figures.get(f"incremental_{kind}_seconds", 0.0)
            print(f"  {kind:<36} {full_kind:>6.1f} {hour_kind:>10.1f} {day_kind:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daily-years", type=int, default=6)
    parser.add_argument("--hourly-years", type=int, default=5)
    parser.add_argument(
        "--hourly-symbols",
        default=",".join(HOURLY_SYMBOLS),
        help="tokens with hourly history, comma-separated, or 'all' (10x today's bronze)",
    )
    parser.add_argument(
        "--compare-scale",
        action="store_true",
        help="run today's size, then hourly history for the whole universe; compare the incremental builds",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--with-unit-tests", action="store_true", help="run dbt's unit tests in both builds too"
    )
    parser.add_argument(
        "--all-rows",
        action="store_true",
        help="time builds as run by hand (every test reads its whole table), not as scheduled",
    )
    parser.add_argument(
        "--target-path",
        default=TARGET_PATH,
        help=f"dbt target folder under dbt/ (default {TARGET_PATH}); use your own when others run dbt",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("crypto_analytics", "dbt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    settings = get_settings()
    everyone = tuple(t.symbol for t in settings.tokens)
    chosen = (
        everyone
        if args.hourly_symbols == "all"
        else tuple(settings.token(s).symbol for s in args.hourly_symbols.split(",") if s)
    )
    scales = (
        [("today", HOURLY_SYMBOLS), ("10x", everyone)] if args.compare_scale else [("", chosen)]
    )
    command = "dbt build"
    if not args.with_unit_tests:
        command += " --exclude-resource-type unit_test"
    if not args.all_rows:
        command += " " + shlex.join(
            [*vars_args(SCHEDULED_DBT_VARS), "--exclude", *SCHEDULED_EXCLUDES]
        )
    mode = "by hand: tests read every row" if args.all_rows else "scheduled: tests read new rows"
    results = {}
    for label, symbols in scales:
        results[label] = run(
            settings, args.daily_years, args.hourly_years, args.keep, args.with_unit_tests,
            args.target_path, args.all_rows, symbols,
        )  # fmt: skip
        if label:
            print(f"--- {label}: hourly history for {len(symbols)} tokens")
        _print_run(results[label], command, mode)
    if args.compare_scale:
        today, big = results["today"], results["10x"]
        print(f"--- cost follows new data: 10x history / today's (target <= {TARGET_SCALE_RATIO})")
        for key, label in (("incremental_hour_seconds", "one new hour"),
                           ("incremental_seconds", "one new day")):  # fmt: skip
            ratio = big[key] / today[key]
            verdict = "met" if ratio <= TARGET_SCALE_RATIO else "MISSED"
            print(f"{label:<26}{today[key]:>7.1f} s {big[key]:>7.1f} s {ratio:>7.2f}  ({verdict})")
        print("nodes whose time grows most with history (one new day)    today      10x")
        grown = sorted(
            (big[k] - today.get(k, 0.0), k.removeprefix("node:"))
            for k in big
            if k.startswith("node:")
        )[::-1]
        for _growth, node in grown[:12]:
            name = node.split(".", 2)[-1][:52]
            print(
                f"  {name:<55} {today.get('node:' + node, 0.0):>6.2f} {big['node:' + node]:>8.2f}"
            )


if __name__ == "__main__":
    main()
