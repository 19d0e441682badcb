"""The forecasting DAGs: their wiring, and a real run of both (dag.test) on the offline source.

ml_training: prepare -> list jobs -> train (mapped, pool ml_training) -> evaluate -> register ->
predict; ml_inference on the gold Asset: predict -> drift check -> retraining trigger.
"""

from __future__ import annotations

import os
import uuid

import pytest
from psycopg import sql

from crypto_analytics.config import get_settings
from crypto_analytics.contract import (
    ML_INFERENCE_DAG_ID,
    ML_TRAINING_DAG_ID,
    ML_TRAINING_POOL,
    ML_TRAINING_SCHEDULE,
)
from crypto_analytics.warehouse import connect

OFFLINE_SYMBOLS = ["BTC", "ETH", "SOL", "USDT"]
FAST = {
    "CRYPTO_ML__FOLDS": "2",
    "CRYPTO_ML__FOLD_DAYS": "10",
    "CRYPTO_ML__LSTM__EPOCHS": "2",
    "CRYPTO_ML__LSTM__HIDDEN_SIZE": "8",
    "CRYPTO_ML__LSTM__WINDOW_DAYS": "20",
    "CRYPTO_ML__GBM__MAX_ITER": "15",
    "CRYPTO_ML__GBM__MIN_SAMPLES_LEAF": "20",
    "CRYPTO_ML__GBM__PERMUTATION_REPEATS": "2",
    "CRYPTO_ML__GBM__CALIBRATION_DAYS": "120",
    "CRYPTO_ML__MIN_CALIBRATION_PERIODS": "5",
    "CRYPTO_ML__MIN_HISTORY_DAYS__PROPHET": "120",
    "CRYPTO_ML__MIN_HISTORY_DAYS__LSTM": "120",
    "CRYPTO_ML__MIN_HISTORY_DAYS__GBM": "120",
    "CRYPTO_ML__MIN_HISTORY_DAYS__GARCH": "150",
}


@pytest.fixture(scope="module")
def ml_dags(dags_folder, dag_parser):
    bag = dag_parser(dags_folder / "ml_training_dag.py")
    inference = dag_parser(dags_folder / "ml_inference_dag.py")
    assert bag.import_errors == {} and inference.import_errors == {}
    return bag.dags[ML_TRAINING_DAG_ID], inference.dags[ML_INFERENCE_DAG_ID]


def test_training_is_nightly_with_mapped_jobs_in_the_pool(ml_dags):
    training, _ = ml_dags
    assert training.schedule == ML_TRAINING_SCHEDULE == "0 2 * * *"
    assert training.max_active_runs == 1
    tasks = training.task_dict
    assert set(tasks) == {"prepare_training_data", "list_training_jobs", "train_models",
                          "evaluate_models", "register_models", "predict_prices",
                          "build_forecast_views"}  # fmt: skip
    assert tasks["train_models"].is_mapped
    assert tasks["train_models"].partial_kwargs["pool"] == ML_TRAINING_POOL
    assert tasks["evaluate_models"].pool == ML_TRAINING_POOL
    assert tasks["evaluate_models"].upstream_task_ids == {"train_models", "prepare_training_data"}
    assert tasks["register_models"].upstream_task_ids == {
        "evaluate_models",
        "prepare_training_data",
    }
    # gold's forecasting views are built and tested once everything of the run is written
    assert [t.task_id for t in training.leaves] == ["build_forecast_views"]
    assert tasks["build_forecast_views"].upstream_task_ids == {"predict_prices"}
    assert [a.name for a in tasks["predict_prices"].outlets] == ["crypto_price_predictions"]


def test_inference_follows_gold_and_retrains_only_on_drift(ml_dags):
    _, inference = ml_dags
    assert [a.name for a in inference.timetable.asset_condition.objects] == ["crypto_gold"]
    tasks = inference.task_dict
    assert set(tasks) == {"predict_prices", "check_drift", "trigger_retraining",
                          "build_forecast_views"}  # fmt: skip
    assert tasks["trigger_retraining"].trigger_dag_id == ML_TRAINING_DAG_ID
    assert tasks["trigger_retraining"].upstream_task_ids == {"check_drift"}
    # the views' build follows the forecasts, not the drift check (which skips what follows it)
    assert tasks["build_forecast_views"].upstream_task_ids == {"predict_prices"}
    assert type(tasks["check_drift"]).__name__ == "_ShortCircuitDecoratedOperator"


def _states(run) -> dict[str, str]:
    states: dict[str, str] = {}
    for ti in run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        states[key] = str(ti.state)
    return states


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


#: The gold views over the forecasting results (dbt/models/gold/forecasting), and silver's
#: token_universe, which their relationship tests read.
FORECASTING_VIEWS = {
    "price_predictions", "volatility_forecasts", "model_evaluation", "feature_importance",
    "forecast_skips", "champion_decisions", "model_drift", "token_universe",
}  # fmt: skip


@pytest.mark.integration
@pytest.mark.slow
def test_offline_source_to_forecasts_in_gold(
    ml_dags, warehouse_url, airflow_db, dbt_tests_since, monkeypatch, tmp_path
):
    """Synthetic candles -> bronze -> dbt (the feature mart, the forecasting views) -> ml_training
    (dag.test) -> gold.price_predictions; then ml_inference refreshes them without duplicates."""
    from datetime import UTC, datetime

    import psycopg

    from crypto_analytics.dbt_runner import run_dbt
    from crypto_analytics.ingestion.pipeline import ingest, plan_requests

    training, inference = ml_dags
    ingest(
        plan_requests(
            sources=["synthetic"], symbols=OFFLINE_SYMBOLS, intervals=["1d"], datasets=["ohlcv"],
            since=datetime(2023, 1, 1, tzinfo=UTC), until=datetime(2024, 3, 1, tzinfo=UTC),
        )
    )  # fmt: skip
    target = ["--target-path", str(tmp_path / "dbt_target"), "--indirect-selection", "cautious"]
    run_dbt(["build", "--select", "+token_daily_features", "path:models/gold/forecasting",
             "--quiet", *target])  # fmt: skip
    mlflow_db = f"mlflow_dag_{uuid.uuid4().hex[:8]}"
    for key, value in {**FAST, "CRYPTO_ML__MLFLOW__DATABASE": mlflow_db,
                       "CRYPTO_ML__WORK_DIR": str(tmp_path / "ml"),
                       "CRYPTO_ML__MLFLOW__ARTIFACTS_DIR": str(tmp_path / "mlflow")}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    for dag in ml_dags:
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 0)
    try:
        started = datetime.now(UTC)
        run = training.test()
        states = _states(run)
        assert set(states.values()) == {"success"}, states
        assert sum(1 for key in states if key.startswith("train_models[")) >= 5
        assert _emitted(run) == ["crypto_price_predictions"]
        # the run's last task tested gold's forecasting views over what it wrote, and only them
        tested = dbt_tests_since(warehouse_url, started)
        assert {"price_predictions", "model_evaluation", "champion_decisions"} <= set(tested)
        assert set(tested) <= FORECASTING_VIEWS, set(tested) - FORECASTING_VIEWS
        assert set(tested.values()) == {"pass"}
        with connect(warehouse_url) as conn:
            per_model = dict(conn.execute(
                "select model, count(distinct symbol) from gold.price_predictions group by model"
            ).fetchall())  # fmt: skip
            evaluated = conn.execute("select count(*) from gold.model_evaluation").fetchone()[0]
            decisions = conn.execute("select count(*) from gold.champion_decisions").fetchone()[0]
        assert per_model == {"naive": 4, "drift": 4, "prophet": 3, "lstm": 3, "gbm": 3,
                             "ensemble": 4}  # fmt: skip
        assert evaluated > 0 and decisions == 1
        total = sum(per_model.values()) * 3

        started = datetime.now(UTC)
        again = inference.test()
        states = _states(again)
        assert states.pop("trigger_retraining") == "skipped"  # no drift: no retraining
        assert set(states.values()) == {"success"}, states
        assert "price_predictions" in dbt_tests_since(warehouse_url, started)
        assert _emitted(again) == ["crypto_price_predictions"]
        with connect(warehouse_url) as conn:
            rows = conn.execute("select count(*) from gold.price_predictions").fetchone()[0]
        assert rows == total
    finally:
        with psycopg.connect(os.environ["CRYPTO_DATABASE_URL"], autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(mlflow_db))
            )
