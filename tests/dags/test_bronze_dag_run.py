"""The bronze DAG run for real (dag.test, in-process) on the offline source against Postgres.

What these prove: a run lands the candles and one audit row per batch and announces the bronze
Asset; a rerun of the same window lands nothing and announces nothing; and when one symbol's
fetch fails, the other symbols still land, the failure is in the audit table, its task instance
is red and the run ends failed, while the data that did land is still announced.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.errors import SourceUnavailable
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration

#: Three tokens, daily candles, a fixed January: exactly 30 candles each, whatever today is.
RUN_CONF = {
    "sources": ["synthetic"],
    "symbols": ["BTC", "ETH", "SOL"],
    "intervals": ["1d"],
    "datasets": ["ohlcv"],
    "since": "2024-01-01T00:00:00",
    "until": "2024-01-31T00:00:00",
}
JAN_1 = datetime(2024, 1, 1, tzinfo=UTC)
JAN_30 = datetime(2024, 1, 30, tzinfo=UTC)


@pytest.fixture
def bronze_dag(bronze_dag_bag, airflow_db, monkeypatch):
    """The parsed DAG with retries off: dag.test() would otherwise wait out each retry_delay.

    One symbol per request, so each token is a task instance of its own and the tests can
    assert on them one by one; grouped requests have their own test below."""
    monkeypatch.setenv("CRYPTO_INGESTION__SYMBOLS_PER_REQUEST", "1")
    get_settings.cache_clear()
    dag = bronze_dag_bag.dags["bronze_ingestion"]
    saved = {task.task_id: task.retries for task in dag.tasks}
    for task in dag.tasks:
        task.retries = 0
    yield dag
    for task in dag.tasks:
        task.retries = saved[task.task_id]


@pytest.fixture
def eth_is_down(monkeypatch):
    """The synthetic source fails for ETH only, as a real feed outage would."""
    real_fetch = SyntheticSource.fetch_ohlcv

    def fetch(self, token, interval, start, end):
        if token.symbol == "ETH":
            raise SourceUnavailable("synthetic", "ETH feed is down (injected by the test)")
        return real_fetch(self, token, interval, start, end)

    monkeypatch.setattr(SyntheticSource, "fetch_ohlcv", fetch)


def _task_states(run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in sorted(run.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


def _asset_events(run) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run.run_id)
        ).all()
    return [{"asset": name, "extra": extra} for name, extra in rows]


def _bronze_prices(url: str) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(
            """
            select symbol, count(*), min("timestamp"), max("timestamp")
            from bronze.raw_crypto_prices
            where source_api = 'synthetic' and interval = '1d'
            group by symbol order by symbol
            """
        ).fetchall()


def _audit(url: str) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(
            """
            select symbols[1], interval, status, rows_fetched, rows_inserted, rows_duplicate, error
            from bronze.ingestion_audit order by symbols[1], started_at
            """
        ).fetchall()


def test_run_lands_candles_and_audit_and_announces_bronze(warehouse_url, bronze_dag, capfd):
    run = bronze_dag.test(run_conf=RUN_CONF)
    # mapped results are read in one slice: no "XCom not found ... offset=N" error per run
    captured = capfd.readouterr()
    assert "XCom not found" not in captured.out + captured.err

    assert run.state == "success"
    assert _task_states(run) == {
        "plan_fetches": ["success"],
        "ingest_batch": ["success"] * 3,
        "check_and_announce": ["success"],
        "surface_failures": ["success"],
    }
    assert _bronze_prices(warehouse_url) == [
        ("BTC", 30, JAN_1, JAN_30),
        ("ETH", 30, JAN_1, JAN_30),
        ("SOL", 30, JAN_1, JAN_30),
    ]
    assert _audit(warehouse_url) == [
        ("BTC", "1d", "succeeded", 30, 30, 0, None),
        ("ETH", "1d", "succeeded", 30, 30, 0, None),
        ("SOL", "1d", "succeeded", 30, 30, 0, None),
    ]
    assert _asset_events(run) == [
        {
            "asset": "crypto_bronze",
            "extra": {"batches": 3, "rows_inserted": 90, "complete": True, "failures": []},
        }
    ]

    # The same window again: every candle is a duplicate, so nothing new is announced.
    rerun = bronze_dag.test(run_conf=RUN_CONF)

    assert rerun.state == "success"
    assert _task_states(rerun)["check_and_announce"] == ["skipped"]
    assert _asset_events(rerun) == []
    assert [row[:6] for row in _audit(warehouse_url)] == [
        ("BTC", "1d", "succeeded", 30, 30, 0),
        ("BTC", "1d", "succeeded", 30, 0, 30),
        ("ETH", "1d", "succeeded", 30, 30, 0),
        ("ETH", "1d", "succeeded", 30, 0, 30),
        ("SOL", "1d", "succeeded", 30, 30, 0),
        ("SOL", "1d", "succeeded", 30, 0, 30),
    ]
    assert _bronze_prices(warehouse_url)[0][1] == 30


def test_one_failing_symbol_keeps_the_others_and_fails_the_run(
    warehouse_url, bronze_dag, eth_is_down
):
    run = bronze_dag.test(run_conf=RUN_CONF)

    assert run.state == "failed"
    fetches = {
        ti.rendered_map_index: str(ti.state)
        for ti in run.get_task_instances()
        if ti.task_id == "ingest_batch"
    }
    assert fetches == {
        "synthetic ohlcv/1d BTC [2024-01-01 00:00, 2024-01-31 00:00)": "success",
        "synthetic ohlcv/1d ETH [2024-01-01 00:00, 2024-01-31 00:00)": "failed",
        "synthetic ohlcv/1d SOL [2024-01-01 00:00, 2024-01-31 00:00)": "success",
    }
    states = _task_states(run)
    assert states["check_and_announce"] == ["success"]
    assert states["surface_failures"] == ["failed"]

    assert _bronze_prices(warehouse_url) == [
        ("BTC", 30, JAN_1, JAN_30),
        ("SOL", 30, JAN_1, JAN_30),
    ]
    assert _audit(warehouse_url) == [
        ("BTC", "1d", "succeeded", 30, 30, 0, None),
        (
            "ETH",
            "1d",
            "failed",
            0,
            0,
            0,
            "SourceUnavailable: synthetic: ETH feed is down (injected by the test)",
        ),
        ("SOL", "1d", "succeeded", 30, 30, 0, None),
    ]
    # What landed passed the checks, so silver is told about it despite the failed symbol,
    # and the event says the run was not complete.
    (event,) = _asset_events(run)
    assert event["extra"]["rows_inserted"] == 60 and event["extra"]["batches"] == 2
    assert event["extra"]["complete"] is False
    assert event["extra"]["failures"] == ["1 task instance(s) failed: ingest_batch_1"]


def test_a_failing_symbol_inside_a_grouped_request_keeps_its_group(
    warehouse_url, bronze_dag, eth_is_down, monkeypatch
):
    monkeypatch.setenv("CRYPTO_INGESTION__SYMBOLS_PER_REQUEST", "8")
    get_settings.cache_clear()
    run = bronze_dag.test(run_conf=RUN_CONF)

    assert run.state == "failed"
    states = _task_states(run)
    # One request for the three tokens: it fetched and loaded what it could...
    assert states["ingest_batch"] == ["success"]
    assert states["check_and_announce"] == ["success"]
    # ...and the run still ends failed, naming the symbol.
    assert states["surface_failures"] == ["failed"]
    assert _bronze_prices(warehouse_url) == [
        ("BTC", 30, JAN_1, JAN_30),
        ("SOL", 30, JAN_1, JAN_30),
    ]
    with connect(warehouse_url) as conn:
        audit_rows = conn.execute(
            "select symbols, status, rows_inserted, error from bronze.ingestion_audit"
            " order by status"
        ).fetchall()
    assert audit_rows == [
        (
            ["ETH"],
            "failed",
            0,
            "SourceUnavailable: synthetic: ETH feed is down (injected by the test)",
        ),
        (["BTC", "SOL"], "succeeded", 60, None),
    ]
    (event,) = _asset_events(run)
    assert (event["extra"]["batches"], event["extra"]["rows_inserted"]) == (1, 60)
    assert event["extra"]["complete"] is False
    assert event["extra"]["failures"] == [
        "1 symbol(s) could not be fetched: synthetic ETH (SourceUnavailable: synthetic: ETH feed "
        "is down (injected by the test))"
    ]


def test_a_failing_quality_gate_announces_nothing_and_names_itself(
    warehouse_url, bronze_dag, monkeypatch
):
    """SOL's feed sends one candle whose high is below its low: it is quarantined, one row of 30
    is over a 1 % quarantine limit, so the gate fails. The good rows stay in bronze (they passed
    validation), but silver is not told, and the run ends failed naming the gate."""
    real_fetch = SyntheticSource.fetch_ohlcv

    def fetch(self, token, interval, start, end):
        result = real_fetch(self, token, interval, start, end)
        if token.symbol == "SOL":
            result.frame.loc[result.frame.index[0], "high"] = 0.5 * result.frame["low"].iloc[0]
        return result

    monkeypatch.setattr(SyntheticSource, "fetch_ohlcv", fetch)
    monkeypatch.setenv("CRYPTO_INGESTION__MAX_QUARANTINE_RATIO", "0.01")
    get_settings.cache_clear()

    run = bronze_dag.test(run_conf=RUN_CONF)

    assert run.state == "failed"
    states = _task_states(run)
    assert states["ingest_batch"] == ["success"] * 3
    assert states["check_and_announce"] == ["failed"]
    assert states["surface_failures"] == ["failed"]
    assert _asset_events(run) == []
    (failures,) = [
        ti.xcom_pull(task_ids="check_and_announce", key="failures")
        for ti in run.get_task_instances()
        if ti.task_id == "surface_failures"
    ]
    assert "bronze quality check failed" in failures["quality_gate"]
    assert "(synthetic ohlcv/1d) quarantined 1 of 30 rows" in failures["quality_gate"]
