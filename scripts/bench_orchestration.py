"""Benchmark the orchestrated cycle (`make bench`): bronze -> silver -> gold under a real local
Airflow, next to the dbt CLI doing the same work.

1. A fresh database is primed like `make demo`: synthetic daily candles and market snapshots for
   the whole universe (--days, default 730) and hourly candles (--hourly-days, default 60), up to
   `--cycles + 1` hours ago, then one full dbt build in the scheduled mode. A copy of it
   (`create database ... template`) is kept for the CLI.
2. The local stack starts on the primed database (Airflow's four components only, state in a temp
   folder, the API on a free port; scripts/stack.py) and the three DAGs are unpaused.
3. Each cycle triggers bronze_ingestion with sources=synthetic and `until` one hour further: it
   lands one more hourly candle per token and the market snapshots, and Assets chain silver and
   gold. Timed from the API: each DAG run (queued -> end) and the cycle (bronze start -> gold's
   Asset event). The first cycle starts cold (Cosmos has no dbt partial-parse cache yet).
4. On the copy, the same hours land in-process and `crypto-analytics dbt build` (scheduled mode:
   the same vars and selection as the DAGs) runs as a subprocess: the dbt CLI for the same work.

`--dbt-mode local` renders the dbt DAGs one task per model (DBT_DAGS_EXECUTION_MODE) to compare
with the default watcher mode. The server comes from CRYPTO_DATABASE_URL, else the embedded one;
the benchmark's databases are dropped afterwards. Figures are wall clock on a shared machine:
take them on an idle one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from crypto_analytics.contract import (
    BRONZE_DAG_ID,
    GOLD_DAG_ID,
    PIPELINE_DAG_IDS,
    SCHEDULED_DBT_VARS,
    SILVER_DAG_ID,
)
from crypto_analytics.dbt_runner import vars_args
from crypto_analytics.warehouse import database_url, url_for_database

log = logging.getLogger("bench_orchestration")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_CYCLE_SECONDS = 60.0
HOUR = timedelta(hours=1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _env(url: str, folder: Path, port: int, dbt_mode: str) -> dict[str, str]:
    """The environment of everything the benchmark runs: its own database, data dir and port."""
    return {
        **os.environ,
        "CRYPTO_DATABASE_URL": url,
        "CRYPTO_DATA_DIR": str(folder / "data"),
        "CRYPTO_LAKE_DIR": str(folder / "lake"),
        "AIRFLOW__API__PORT": str(port),
        "DBT_DAGS_EXECUTION_MODE": dbt_mode,
        "AIRFLOW_ADMIN_PASSWORD": uuid.uuid4().hex,
        # A scheduled bronze run must never reach for the network on a benchmark machine.
        "CRYPTO_INGESTION__DEFAULT_SOURCES": '["synthetic"]',
    }


def _in(env: dict[str, str], code: str) -> None:
    """Run platform code in a fresh interpreter with the benchmark's environment."""
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)


def _land(env: dict[str, str], since: str | None, until: str, datasets: str) -> None:
    _in(
        env,
        "from datetime import datetime\n"
        "from crypto_analytics.ingestion.pipeline import plan_requests, ingest\n"
        f"since = {since!r}\n"
        "reqs = []\n"
        f"for datasets, intervals in {datasets}:\n"
        "    reqs += plan_requests(sources=['synthetic'], intervals=intervals, datasets=datasets,\n"
        "        since=datetime.fromisoformat(since) if since else None,\n"
        f"        until=datetime.fromisoformat({until!r}))\n"
        "reports, failures = ingest(reqs)\n"
        "assert not failures, failures\n",
    )


def prime(env: dict[str, str], days: int, hourly_days: int, until: datetime) -> None:
    """History like `make demo`, up to `until`, then a full build in the scheduled mode."""
    daily = (until - timedelta(days=days)).isoformat()
    hourly = (until - timedelta(days=hourly_days)).isoformat()
    _in(env, "from crypto_analytics.cli import db_init; db_init()")
    _land(env, daily, until.isoformat(), "[(['ohlcv', 'market'], ['1d'])]")
    _land(env, hourly, until.isoformat(), "[(['ohlcv'], ['1h'])]")
    dbt_build(env)


def dbt_build(env: dict[str, str]) -> float:
    """`crypto-analytics dbt build` as the scheduled builds run it; wall seconds."""
    args = [
        str(BIN / "crypto-analytics"),
        "dbt",
        "build",
        "--quiet",
        "--exclude-resource-type",
        "unit_test",
        *vars_args(SCHEDULED_DBT_VARS),
    ]
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, cwd=ROOT)
    return time.perf_counter() - started


def forget_last_hour(url: str, hour: datetime) -> int:
    """Delete the hourly candles that opened at `hour`, as if they had not arrived yet: the
    cycle then lands them again, and silver and gold recompute from them as for a new hour."""
    with psycopg.connect(url) as conn:
        done = conn.execute(
            "delete from bronze.raw_crypto_prices where interval = '1h' and \"timestamp\" = %s",
            (hour,),
        )
        return done.rowcount


def cycle_conf(hour: datetime) -> dict[str, Any]:
    """Bronze's params for one cycle: the synthetic market's hourly candles that opened at `hour`."""
    return {
        "sources": ["synthetic"],
        "datasets": ["ohlcv"],
        "intervals": ["1h"],
        "since": hour.isoformat(),
        "until": (hour + HOUR).isoformat(),
    }


def _timeline(
    dag_id: str, tis: list[dict[str, Any]], origin: datetime
) -> list[tuple[float, float, float, str]]:
    """(queued, started, ended, label) of each task instance, seconds after `origin`."""

    def at(value: str | None) -> float:
        return (_parse(value) - origin).total_seconds() if value else float("nan")

    rows = []
    for ti in tis:
        label = f"{dag_id}.{ti['task_id']}"
        if ti.get("map_index", -1) >= 0:
            label += f"[{ti['map_index']}]"
        if (ti.get("try_number") or 1) > 1:  # a retry: its start is the retry's, not the first's
            label += f" (try {ti['try_number']})"
        rows.append(
            (at(ti.get("queued_when")), at(ti.get("start_date")), at(ti.get("end_date")), label)
        )
    return rows


def print_timeline(rows: list[tuple[float, float, float, str]]) -> None:
    """Where a cycle's seconds go: every task instance, in the order it started."""
    print(f"{'queued':>8}{'start':>8}{'end':>8}{'run s':>7}  task (seconds after bronze start)")
    for queued, start, end, label in sorted(rows, key=lambda r: (r[1], r[3])):
        print(f"{queued:8.1f}{start:8.1f}{end:8.1f}{end - start:7.1f}  {label}")


def run_cycle(
    api: Any, conf: dict[str, Any], timeout: float
) -> tuple[dict[str, float], list[tuple[float, float, float, str]]]:
    """Trigger bronze and wait for gold; seconds per DAG run and for the whole cycle, and the
    cycle's task instances on one time line."""
    bronze_run = api.trigger(BRONZE_DAG_ID, conf)
    runs = {BRONZE_DAG_ID: api.wait_for_run_id(BRONZE_DAG_ID, bronze_run, timeout)}
    # The silver and gold runs this cycle's Asset events started (a scheduled bronze run may
    # chain its own cycle meanwhile: it is not the one timed).
    runs[SILVER_DAG_ID] = api.wait_for_triggered_run(
        SILVER_DAG_ID, (BRONZE_DAG_ID, bronze_run), timeout
    )
    silver_run = runs[SILVER_DAG_ID]["dag_run_id"]
    runs[GOLD_DAG_ID] = api.wait_for_triggered_run(
        GOLD_DAG_ID, (SILVER_DAG_ID, silver_run), timeout
    )
    events = api.asset_events(GOLD_DAG_ID, runs[GOLD_DAG_ID]["dag_run_id"])
    if not events:
        raise RuntimeError(f"gold run {runs[GOLD_DAG_ID]['dag_run_id']} emitted no Asset event")
    figures = {
        dag_id: (_parse(run["end_date"]) - _parse(run["start_date"])).total_seconds()
        for dag_id, run in runs.items()
    }
    bronze_start = _parse(runs[BRONZE_DAG_ID]["start_date"])
    figures["cycle"] = (_parse(events[0]["timestamp"]) - bronze_start).total_seconds()
    timeline: list[tuple[float, float, float, str]] = []
    for dag_id in PIPELINE_DAG_IDS:
        run = runs[dag_id]
        figures[f"{dag_id}_wait"] = (
            _parse(run["start_date"]) - _parse(run["queued_at"])
        ).total_seconds()
        tis = api.task_instances(dag_id, run["dag_run_id"])
        timeline.extend(_timeline(dag_id, tis, bronze_start))
        figures[f"{dag_id}_tasks"] = float(len(tis))
        # the longest a task of the run waited for an executor slot (queued -> started)
        figures[f"{dag_id}_slot_wait"] = max(
            (
                (_parse(ti["start_date"]) - _parse(ti["queued_when"])).total_seconds()
                for ti in tis
                if ti.get("queued_when") and ti.get("start_date")
            ),
            default=0.0,
        )
    return figures, timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=730, help="days of daily history to prime")
    parser.add_argument("--hourly-days", type=int, default=60, help="days of hourly history")
    parser.add_argument("--cycles", type=int, default=2, help="cycles to time (one hour each)")
    parser.add_argument("--dbt-mode", choices=["watcher", "local"], default="watcher")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per DAG run")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print every task instance of the last cycle and of the slowest",
    )
    parser.add_argument("--keep", action="store_true", help="keep databases and the temp folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    sys.path.insert(0, str(ROOT / "scripts"))  # the stack script beside this one
    from stack import AirflowApi  # noqa: E402

    server = database_url()
    name = f"crypto_bench_orch_{uuid.uuid4().hex[:8]}"
    copy = f"{name}_cli"
    folder = Path(tempfile.mkdtemp(prefix="bench-orchestration-"))
    port = _free_port()
    env = _env(url_for_database(server, name), folder, port, args.dbt_mode)
    cli_env = {**env, "CRYPTO_DATABASE_URL": url_for_database(server, copy)}
    now = datetime.now(UTC)
    last_hour = now.replace(minute=0, second=0, microsecond=0) - HOUR  # the last closed candle
    stack_up = False
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        started = time.perf_counter()
        prime(env, args.days, args.hourly_days, now)
        log.info("primed in %.0f s", time.perf_counter() - started)
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(copy), sql.Identifier(name)
                )
            )
        stack = [sys.executable, str(ROOT / "scripts" / "stack.py")]
        subprocess.run([*stack, "up", "--only", "airflow-*"], env=env, check=True, cwd=ROOT)
        stack_up = True
        os.environ.update({k: env[k] for k in ("CRYPTO_DATA_DIR", "AIRFLOW__API__PORT")})
        from crypto_analytics.config import get_settings

        get_settings.cache_clear()
        api = AirflowApi.for_stack(get_settings())
        # Unpausing bronze starts a scheduled run at once (order books, an hour that closed
        # since priming), which may run silver and gold: cycles start once all is idle.
        unpaused = datetime.now(UTC).isoformat()
        for dag_id in PIPELINE_DAG_IDS:
            api.unpause(dag_id)
        api.wait_for_run(BRONZE_DAG_ID, unpaused, args.timeout)
        api.wait_idle(PIPELINE_DAG_IDS, args.timeout)  # and whatever it triggered
        cycles = []
        timelines = []
        for k in range(args.cycles):
            forget_last_hour(env["CRYPTO_DATABASE_URL"], last_hour)
            figures, timeline = run_cycle(api, cycle_conf(last_hour), args.timeout)
            log.info("cycle %d: %s", k + 1, json.dumps(figures))
            cycles.append(figures)
            timelines.append(timeline)
        cli = []
        conf = cycle_conf(last_hour)
        for _ in range(args.cycles):
            forget_last_hour(cli_env["CRYPTO_DATABASE_URL"], last_hour)
            _land(cli_env, conf["since"], conf["until"], "[(['ohlcv'], ['1h'])]")
            cli.append(dbt_build(cli_env))
    finally:
        if stack_up:
            subprocess.run([*stack, "down"], env=env, check=False, cwd=ROOT)
        if not args.keep:
            with psycopg.connect(server, autocommit=True) as admin:
                for db in (name, copy, f"{name}_airflow"):
                    admin.execute(
                        sql.SQL("drop database if exists {} with (force)").format(
                            sql.Identifier(db)
                        )
                    )
            shutil.rmtree(folder, ignore_errors=True)

    print(f"dbt DAG mode              {args.dbt_mode}")
    print(f"history                   {args.days} days daily, {args.hourly_days} days hourly")
    header = "".join(f"{'cycle ' + str(k + 1):>12}" for k in range(len(cycles)))
    print(f"{'seconds':26}{header}")
    rows = [
        ("bronze_ingestion run", BRONZE_DAG_ID),
        ("silver: queued -> start", f"{SILVER_DAG_ID}_wait"),
        ("silver_transformation run", SILVER_DAG_ID),
        ("gold: queued -> start", f"{GOLD_DAG_ID}_wait"),
        ("gold_aggregation run", GOLD_DAG_ID),
        ("cycle: bronze start -> gold", "cycle"),
        ("longest slot wait, bronze", f"{BRONZE_DAG_ID}_slot_wait"),
        ("longest slot wait, silver", f"{SILVER_DAG_ID}_slot_wait"),
        ("longest slot wait, gold", f"{GOLD_DAG_ID}_slot_wait"),
    ]
    for label, key in rows:
        print(f"{label:26}" + "".join(f"{c[key]:>12.1f}" for c in cycles))
    print(f"{'dbt CLI build (same work)':26}" + "".join(f"{s:>12.1f}" for s in cli))
    print(
        f"{'task instances bronze/silver/gold':26}"
        + "".join(
            f"{c[BRONZE_DAG_ID + '_tasks']:>4.0f}/{c[SILVER_DAG_ID + '_tasks']:.0f}/{c[GOLD_DAG_ID + '_tasks']:<3.0f}"
            for c in cycles
        )
    )
    seconds = [c["cycle"] for c in cycles]
    slowest = max(range(len(cycles)), key=seconds.__getitem__)
    if args.timeline:
        # the last cycle, and the slowest when another: an outlier is what needs explaining
        for k in sorted({slowest, len(cycles) - 1}):
            print(f"\ntimeline of cycle {k + 1}{' (the slowest)' if k == slowest else ''}")
            print_timeline(timelines[k])
    typical = statistics.median(seconds)
    print(
        f"median cycle {typical:.1f} s of {len(cycles)}, slowest {seconds[slowest]:.1f} s "
        f"(target < {TARGET_CYCLE_SECONDS:.0f} s on an idle machine: "
        f"{'met' if typical < TARGET_CYCLE_SECONDS else 'MISSED'} by the median)"
    )


if __name__ == "__main__":
    main()
