"""`make up` as the README tells a user to run it, offline: the DAGs unpaused, one full cycle
(bronze -> silver -> gold, chained by Assets) succeeds, `make down` leaves no process behind.

Slow (minutes on 2 cores), so marked; CI runs it. Each test gets its own warehouse (the embedded
server under its data folder, or a database of its own), data folder and API port, so it never
meets a developer's `make up` on the same machine, and the environment is passed with `make -e`
so a developer's .env cannot redirect it. The offline part
is what the README says to put in .env: CRYPTO_INGESTION__DEFAULT_SOURCES=["synthetic"].
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from crypto_analytics.contract import GOLD_DAG_ID, PIPELINE_DAG_IDS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: Warnings every component printed before they were fixed (README: startup warnings).
FIXED_WARNINGS = ("InsecureKeyLengthWarning", "[openlineage/namespace] not found")
CYCLE_TIMEOUT_S = 900.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _make(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-e", "--no-print-directory", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _user_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's shell: no Airflow settings of the test session, the offline line of .env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "CRYPTO_DATA_DIR": str(tmp_path / "data"),
            "CRYPTO_LAKE_DIR": str(tmp_path / "lake"),
            "CRYPTO_INGESTION__DEFAULT_SOURCES": '["synthetic"]',
            # a first run fetches this much history: keep the cycle small
            "CRYPTO_INGESTION__INITIAL_LOOKBACK_DAYS": "3",
            "AIRFLOW__API__PORT": str(_free_port()),
            "AIRFLOW_ADMIN_PASSWORD": uuid.uuid4().hex,
        }
    )
    env.update(extra)
    return env


def _stack_processes(stack, data_dir: Path) -> dict[int, str]:
    return stack.stack_pids(stack.Layout(data_dir))


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "crypto-analytics"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@contextmanager
def _stack_up(stack, env: dict[str, str], data_dir: Path, *make_args: str) -> Iterator[object]:
    """`make up <make_args>`; yields an API client; stops it all and checks nothing is left.

    Without CRYPTO_DATABASE_URL in `env` the stack runs on the embedded server under the data
    folder, stopped afterwards with `crypto-analytics db stop`; with it, Airflow's metadata
    database on that server is dropped afterwards."""
    warehouse_url = env.get("CRYPTO_DATABASE_URL")
    try:
        up = _make(env, "up", *make_args)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield stack.AirflowApi(
            f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}", "admin", env["AIRFLOW_ADMIN_PASSWORD"]
        )
    finally:
        down = _make(env, "down", timeout=120)
        left = _stack_processes(stack, data_dir)
        if warehouse_url is None:
            _cli(env, "db", "stop")
        else:
            metadata = stack.metadata_database(warehouse_url)
            with psycopg.connect(os.environ["CRYPTO_DATABASE_URL"], autocommit=True) as admin:
                admin.execute(
                    sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(metadata)
                    )
                )
    assert down.returncode == 0, down.stderr
    assert left == {}, f"make down left processes behind: {left}"


def _one_cycle(api, warehouse_url: str) -> dict[str, dict]:
    """Unpause the pipeline (what the README says to do in the UI); the first scheduled bronze
    run lands the offline market and Assets chain silver and gold: all three must succeed."""
    unpaused = datetime.now(UTC).isoformat()
    for dag_id in PIPELINE_DAG_IDS:
        api.unpause(dag_id)
    runs = {
        dag_id: api.wait_for_run(dag_id, unpaused, CYCLE_TIMEOUT_S) for dag_id in PIPELINE_DAG_IDS
    }
    assert api.asset_events(GOLD_DAG_ID, runs[GOLD_DAG_ID]["dag_run_id"]), "no gold Asset event"
    with psycopg.connect(warehouse_url) as conn:
        sources = conn.execute(
            "select distinct source_api from bronze.raw_crypto_prices"
        ).fetchall()
        (symbols,) = conn.execute(
            "select count(distinct symbol) from gold.daily_crypto_metrics"
        ).fetchone()
    assert sources == [("synthetic",)], "a scheduled run reached for a network source"
    assert symbols >= 30
    return runs


def test_make_up_offline_on_embedded(stack, tmp_path):
    """As a newcomer follows the README: no CRYPTO_DATABASE_URL (the embedded server under the
    data folder, Airflow's metadata in a database of its own on it), the offline line of .env,
    `make up`, every component healthy, the DAGs unpaused, one full cycle; `make down` and
    `db stop` leave no process behind. (A short test name: the server's socket lives under
    tmp_path, and a Unix socket path may not exceed 107 bytes.)"""
    env = _user_env(tmp_path)
    env.pop("CRYPTO_DATABASE_URL", None)
    with _stack_up(stack, env, tmp_path / "data", "ONLY=airflow-*") as api:
        status = _make(env, "status")
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("healthy") == 4
        assert (tmp_path / "data" / "pg").is_dir()
        url = _cli(env, "db", "url")
        assert url.returncode == 0, url.stderr
        _one_cycle(api, url.stdout.strip())
    log = (tmp_path / "data" / "stack" / "stack.log").read_text()
    for warning in FIXED_WARNINGS:
        assert warning not in log
    assert _stack_processes(stack, tmp_path / "data") == {}


def test_celery_profile_runs_one_cycle_on_both_workers(stack, warehouse_url, tmp_path):
    """`make up EXECUTOR=celery`: Redis as the broker (a database of its own for this test), the
    Procfile's two workers; every task of the cycle succeeds and both workers ran some."""
    import redis

    broker = "redis://127.0.0.1:6379/11"
    try:
        redis.Redis.from_url(broker).flushdb()  # no message of an earlier, aborted run
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {broker}: {exc}")
    env = _user_env(
        tmp_path,
        CRYPTO_DATABASE_URL=warehouse_url,
        AIRFLOW__CELERY__BROKER_URL=broker,
        STACK_WORKER_CONCURRENCY="1",  # one slot each: the second worker must take tasks too
    )
    with _stack_up(
        stack, env, tmp_path / "data", "EXECUTOR=celery", "ONLY=airflow-* celery-*"
    ) as api:
        status = _make(env, "status")
        assert "celery-worker-1" in status.stdout and "celery-worker-2" in status.stdout
        runs = _one_cycle(api, warehouse_url)
        ran = sum(len(api.task_instances(d, r["dag_run_id"])) for d, r in runs.items())
    log = (tmp_path / "data" / "stack" / "stack.log").read_text().splitlines()
    # honcho prefixes every line with `HH:MM:SS <process>.1 |`; Celery logs each task it takes
    received = {
        worker: sum(
            1 for line in log if f" {worker}.1 " in line[:40] and "execute_workload" in line
            and "received" in line
        )
        for worker in ("celery-worker-1", "celery-worker-2")
    }  # fmt: skip
    assert all(received.values()), f"tasks per worker: {received}"
    assert sum(received.values()) >= ran // 2, (received, ran)
