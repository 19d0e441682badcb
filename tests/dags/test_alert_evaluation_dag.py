"""The alert DAG: its schedule (gold, forecasts, or the half-hour clock), its wiring, and real runs
(dag.test, in-process) against Postgres: an alert recorded and delivered to a local webhook, and a
failing rule that still lets the other rules and the delivery run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.contract import (
    ALERTS_DAG_ID,
    ALERTS_SCHEDULE,
    GOLD_ASSET_URI,
    PREDICTIONS_ASSET_URI,
)


@pytest.fixture(scope="module")
def alert_dag_bag(dags_folder, dag_parser):
    bag = dag_parser(dags_folder / "alert_evaluation_dag.py")
    assert bag.import_errors == {}
    return bag


def test_schedule_is_gold_or_forecasts_or_the_clock(alert_dag_bag):
    from airflow.sdk import AssetOrTimeSchedule

    dag = alert_dag_bag.dags[ALERTS_DAG_ID]
    assert isinstance(dag.schedule, AssetOrTimeSchedule)
    assert dag.schedule.timetable.expression == ALERTS_SCHEDULE
    assert {asset.uri for asset in dag.timetable.asset_condition.objects} == {
        GOLD_ASSET_URI,
        PREDICTIONS_ASSET_URI,
    }
    assert type(dag.timetable.asset_condition).__name__ == "AssetAny"
    assert dag.max_active_runs == 1 and dag.catchup is False


def test_delivery_and_the_view_build_run_whatever_the_evaluation_did(alert_dag_bag):
    dag = alert_dag_bag.dags[ALERTS_DAG_ID]
    tasks = dag.task_dict
    assert set(tasks) == {"evaluate_alert_rules", "deliver_alert_notifications", VIEW_BUILD}
    for after in ("deliver_alert_notifications", VIEW_BUILD):
        assert tasks[after].upstream_task_ids == {"evaluate_alert_rules"}
        assert tasks[after].trigger_rule == "all_done"
    assert all(task.retries >= 1 for task in dag.tasks)
    # Both are leaves, so either failing turns the run red (the delivery fails when the
    # evaluation did), while a green view build cannot hide a failed evaluation.
    assert {t.task_id for t in dag.leaves} == {"deliver_alert_notifications", VIEW_BUILD}


VIEW_BUILD = "build_alert_views"


@pytest.fixture
def alert_dag(alert_dag_bag, airflow_db):
    """The parsed DAG with retries off: dag.test() would otherwise wait out each retry_delay."""
    dag = alert_dag_bag.dags[ALERTS_DAG_ID]
    saved = {task.task_id: task.retries for task in dag.tasks}
    for task in dag.tasks:
        task.retries = 0
    yield dag
    for task in dag.tasks:
        task.retries = saved[task.task_id]


@pytest.fixture
def evaluate_and_deliver(alert_dag):
    """The evaluation and the delivery alone (the DAG less its view build): the tests of what
    they record and send run on a stand-in gold table, where dbt has no silver to build the
    alert views on. test_the_alert_views_are_built_and_tested_after_the_evaluation runs all."""
    return alert_dag.partial_subset(task_ids=["deliver_alert_notifications"])


@pytest.fixture
def btc_gold(warehouse_url: str) -> str:
    """gold.daily_crypto_metrics (the columns the rules read): BTC closed at 39,000 yesterday."""
    today = datetime.now(UTC).date()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("create schema if not exists gold")
        conn.execute(
            "create table gold.daily_crypto_metrics (symbol text, date date, close double precision,"
            " log_return double precision, _source_ingested_at timestamptz)"
        )
        for days_ago, close in ((2, 41000.0), (1, 39000.0)):
            day: date = today - timedelta(days=days_ago)
            conn.execute(
                "insert into gold.daily_crypto_metrics values ('BTC', %s, %s, null, now())",
                (day, close),
            )
    return warehouse_url


def use(monkeypatch, tmp_path: Path, rules: str, **env: str) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(rules)
    monkeypatch.setenv("CRYPTO_ALERTS__RULES_FILE", str(path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.mark.integration
def test_a_run_records_the_alert_and_delivers_it(
    evaluate_and_deliver, btc_gold, httpserver, monkeypatch, tmp_path
):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    use(
        monkeypatch,
        tmp_path,
        "rules: [{id: btc_low, type: price_threshold, symbols: [BTC], below: 40000, channels: [webhook]}]",
        ALERT_WEBHOOK_URL=httpserver.url_for("/hook"),
    )
    run = evaluate_and_deliver.test()
    assert run.state == "success", states(run)
    with psycopg.connect(btc_gold) as conn:
        event = conn.execute(
            "select rule_id, subject, evaluated_by, notified from alerts.alert_events"
        ).fetchall()
        delivery = conn.execute("select channel, status from alerts.deliveries").fetchall()
    assert event == [("btc_low", "BTC", "airflow", True)]
    assert delivery == [("webhook", "delivered")]
    assert len(httpserver.log) == 1

    rerun = evaluate_and_deliver.test()  # the same episode: nothing new, nothing sent twice
    assert rerun.state == "success"
    assert len(httpserver.log) == 1


@pytest.mark.integration
def test_a_failing_rule_fails_its_task_but_the_others_and_the_delivery_run(
    evaluate_and_deliver, btc_gold, httpserver, monkeypatch, tmp_path
):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    with psycopg.connect(btc_gold, autocommit=True) as conn:
        conn.execute("create table gold.data_quality_summary (symbol text, latest_close_at text)")
        conn.execute("insert into gold.data_quality_summary values ('BTC', 'not a time')")
    use(
        monkeypatch,
        tmp_path,
        """
        rules:
          - {id: btc_low, type: price_threshold, symbols: [BTC], below: 40000, channels: [webhook]}
          - {id: stale, type: stale_data, dataset: candles, max_age: 1d}
        """,
        ALERT_WEBHOOK_URL=httpserver.url_for("/hook"),
    )
    run = evaluate_and_deliver.test()
    # both red, so the run is: the rule's error on the first, the delivery still done by the second
    assert states(run) == {
        "evaluate_alert_rules": "failed",
        "deliver_alert_notifications": "failed",
    }
    assert run.state == "failed"
    with psycopg.connect(btc_gold) as conn:
        rows = dict(conn.execute("select rule_id, status from alerts.rule_state").fetchall())
    assert rows == {"btc_low": "firing", "stale": "error"}
    assert len(httpserver.log) == 1  # the good rule's alert still went out


@pytest.mark.integration
@pytest.mark.slow
def test_the_alert_views_are_built_and_tested_after_the_evaluation(
    alert_dag, btc_gold, dbt_tests_since, httpserver, monkeypatch, tmp_path
):
    """The whole DAG: what the evaluation recorded is in gold's alert views right after it, and
    their data tests ran on it (dbt's own record of the build), in this DAG's run."""
    from crypto_analytics.dbt_runner import run_dbt

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    # silver's staging views, which gold.live_candles reads, as silver's build leaves them
    run_dbt(["run", "--select", "path:models/silver/staging", "--quiet",
             "--target-path", str(tmp_path / "dbt_target")])  # fmt: skip
    use(
        monkeypatch,
        tmp_path,
        "rules: [{id: btc_low, type: price_threshold, symbols: [BTC], below: 40000, channels: [webhook]}]",
        ALERT_WEBHOOK_URL=httpserver.url_for("/hook"),
    )
    started = datetime.now(UTC)
    run = alert_dag.test()
    assert states(run) == {
        "evaluate_alert_rules": "success",
        "deliver_alert_notifications": "success",
        VIEW_BUILD: "success",
    }
    with psycopg.connect(btc_gold) as conn:
        alerts = conn.execute("select rule_id, subject, webhook_status from gold.alerts").fetchall()
    tested = dbt_tests_since(btc_gold, started)
    assert alerts == [("btc_low", "BTC", "delivered")] or alerts == [("btc_low", "BTC", "pending")]
    tested_models = set(tested)
    assert {"alerts", "alert_rule_state", "stream_heartbeat", "live_candles"} <= tested_models
    assert set(tested.values()) == {"pass"}
    assert not tested_models & {"daily_crypto_metrics", "price_predictions"}, tested_models
