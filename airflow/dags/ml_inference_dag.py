"""
### ML inference: refresh the forecasts whenever gold is rebuilt

Scheduled on the **`crypto_gold`** Asset, so every gold build (every 15 minutes of new candles)
is followed by forecasts from each token's newest close, made with the registry's newest version
of each family (`crypto-price-forecaster@latest-<family>`, no training): a few seconds for the
universe. `predict_prices` writes `gold.price_predictions` and `gold.volatility_forecasts`
(idempotent per as-of day, token, horizon and model) and emits **`crypto_price_predictions`**.

**Drift.** The same task compares the champion's realised error over the last
`ml.drift.window_days` with its validation error; beyond `ml.drift.threshold` it writes an alert
row (`gold.model_drift`, read by the alert engine) and `check_drift` lets `trigger_retraining`
start `ml_training` at once instead of waiting for 02:00. Without drift the trigger is skipped.
Before the first training there is nothing to predict with: the run fails naming
`crypto-analytics ml train`.

`build_forecast_views` then builds and tests gold's forecasting views with dbt
(`crypto_analytics.dbt_runner.build_result_views`): their data tests run whenever their data
changes, and the 15-minute gold build, which nothing of theirs feeds, leaves them out.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, get_current_context, task
from crypto_assets import GOLD, PREDICTIONS

from crypto_analytics.contract import (
    DAG_START_DATE,
    DEFAULT_TASK_ARGS,
    FORECASTING_VIEWS,
    ML_TRAINING_DAG_ID,
)

log = logging.getLogger(__name__)


@dag(
    schedule=[GOLD],
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    doc_md=__doc__,
    tags=["ml", "forecasting", "inference"],
    default_args=DEFAULT_TASK_ARGS,
)
def ml_inference() -> None:
    @task(outlets=[PREDICTIONS])
    def predict_prices() -> dict[str, Any]:
        """Forecasts from the newest registered versions; the drift check."""
        from dataclasses import asdict

        from crypto_ml.forecasting.pipeline import predict

        summary = predict()
        get_current_context()["outlet_events"][PREDICTIONS].extra = {
            "as_of": summary.as_of,
            "predictions": summary.predictions,
            "champion": summary.champion,
        }
        log.info("%d forecasts as of %s in %.1f s", summary.predictions, summary.as_of,
                 summary.seconds)  # fmt: skip
        return asdict(summary)

    @task.short_circuit
    def check_drift(summary: dict[str, Any]) -> bool:
        """True (go on and retrain) only when the champion drifted."""
        drifted = [c for c in summary["drift_checks"] if c["is_drift"]]
        for check in drifted:
            log.warning("drift: %s", check)
        return bool(drifted)

    trigger_retraining = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id=ML_TRAINING_DAG_ID,
        wait_for_completion=False,
    )

    @task
    def build_forecast_views() -> dict[str, Any]:
        """Build and test gold's forecasting views over what predict_prices just wrote."""
        from dataclasses import asdict

        from crypto_analytics.dbt_runner import build_result_views

        return asdict(build_result_views(FORECASTING_VIEWS))

    summary = predict_prices()
    summary >> build_forecast_views()
    check_drift(summary) >> trigger_retraining


ml_inference()
