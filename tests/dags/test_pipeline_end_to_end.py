"""Bronze → silver → gold through the three DAGs, offline, against a real Postgres.

dag.test() runs one DAG and records its Asset events but does not start the DAGs scheduled on
them, so the chain is driven here in the scheduler's order. Each dbt layer is one `dbt build`
in-process (Cosmos watcher mode, DBT_RUNNER) whose model tasks then follow its results: this
proves the watcher wiring (build, sensors, announcer) end to end without a scheduler.
"""

from __future__ import annotations

import copy
from datetime import date

import pytest

from crypto_analytics.dbt_runner import dbt_env
from crypto_analytics.warehouse import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYMBOLS = ["BTC", "ETH", "SOL", "DOGE"]  # three Layer 1 tokens and a Meme token
#: 60 daily candles per token: 2024 is a leap year, so January and February hold 31 + 29 days.
BRONZE_CONF = {
    "sources": ["synthetic"],
    "symbols": SYMBOLS,
    "intervals": ["1d"],
    "datasets": ["ohlcv"],
    "since": "2024-01-01T00:00:00",
    "until": "2024-03-01T00:00:00",
}


def _serial(dag):
    """A copy of `dag` whose watcher sensors come after their layer's build.

    A scheduler runs the build and its sensors at once: each sensor defers until the build
    reports its model. dag.test() runs one task at a time in task-id order, so a sensor named
    before `dbt_producer_watcher` would wait inline for a build that never starts.
    """
    producers = [t for t in dag.tasks if t.task_id.endswith(".dbt_producer_watcher")]
    if not producers:  # (a DAG with mapped tasks, bronze, cannot be deep-copied)
        return dag
    dag = copy.deepcopy(dag)
    producers = [dag.task_dict[p.task_id] for p in producers]
    for producer in producers:
        group = producer.task_id.rsplit(".", 1)[0] + "."
        for task in dag.tasks:
            if task.task_id.startswith(group) and task is not producer and hasattr(task, "poke"):
                producer >> task
    return dag


def _emitted(run) -> list[str]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(
            session.scalars(
                select(AssetModel.name)
                .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
                .where(AssetEvent.source_run_id == run.run_id)
            )
        )


def _failed(run) -> list[str]:
    return sorted(
        f"{ti.task_id}[{ti.map_index}]"
        for ti in run.get_task_instances()
        if str(ti.state) in ("failed", "upstream_failed")
    )


def test_bronze_silver_gold_chain_lands_gold_rows(warehouse_url, dag_bag, airflow_db, monkeypatch):
    # The Cosmos tasks' callback writes DBT_* into this process's environment: setting the same
    # values through monkeypatch first makes them go away after the test.
    for name, value in dbt_env(warehouse_url).items():
        monkeypatch.setenv(name, value)
    dags = {dag_id: _serial(dag_bag.dags[dag_id]) for dag_id in dag_bag.dag_ids}
    for dag in dags.values():
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 0)

    bronze = dags["bronze_ingestion"].test(run_conf=BRONZE_CONF)
    assert (bronze.state, _failed(bronze), _emitted(bronze)) == ("success", [], ["crypto_bronze"])

    silver = dags["silver_transformation"].test()
    assert (silver.state, _failed(silver), _emitted(silver)) == ("success", [], ["crypto_silver"])

    gold = dags["gold_aggregation"].test()
    assert (gold.state, _failed(gold), _emitted(gold)) == ("success", [], ["crypto_gold"])

    with connect(warehouse_url) as conn:
        per_symbol = conn.execute(
            """
            select symbol, count(*), min(date), max(date)
            from gold.daily_crypto_metrics group by symbol order by symbol
            """
        ).fetchall()
        # Gold's daily close for a day with only daily candles is that candle's close.
        gold_close, bronze_close = conn.execute(
            """
            select g.close, b.close
            from gold.daily_crypto_metrics g
            join bronze.raw_crypto_prices b
              on b.symbol = g.symbol and b.interval = '1d'
             and b."timestamp" = '2024-02-15 00:00:00+00'
            where g.symbol = 'SOL' and g.date = date '2024-02-15'
            """
        ).fetchone()

    assert per_symbol == [
        ("BTC", 60, date(2024, 1, 1), date(2024, 2, 29)),
        ("DOGE", 60, date(2024, 1, 1), date(2024, 2, 29)),
        ("ETH", 60, date(2024, 1, 1), date(2024, 2, 29)),
        ("SOL", 60, date(2024, 1, 1), date(2024, 2, 29)),
    ]
    assert gold_close == bronze_close
