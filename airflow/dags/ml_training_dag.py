"""
### ML training: nightly backtest, training, registry and forecasts (crypto_ml.forecasting)

Daily at **02:00 UTC** (after the night's gold builds):

1. `prepare_training_data`: reads `gold.token_daily_features`, fixes the walk-forward folds
   (ml.folds cut-offs ml.fold_days apart, expanding window) and splits the work into jobs: one per
   global model (LSTM, gradient boosting, the baselines) and one per group of
   `ml.symbols_per_task` tokens for the per-token models (Prophet, GARCH). Writes the run folder
   (`data/ml/runs/<as-of>_<run>/`) and returns its plan's path: XCom carries paths, never data.
2. `train_models` (mapped over the jobs, pool **`ml_training`**, sized for 2 cores): each job
   backtests its family on its tokens and fits it on everything.
3. `evaluate_models`: the conformal ensemble, the metrics of every model, horizon, token and fold,
   feature importance and skipped tokens, written to schema `ml` in one transaction
   (`gold.model_evaluation`, `gold.feature_importance`, `gold.forecast_skips`).
4. `register_models`: one MLflow run per family (params, metrics, model card, plot, model),
   a registry version per family, and the `champion` decision (`gold.champion_decisions`).
5. `predict_prices`: forecasts from each token's newest close with the new versions
   (`gold.price_predictions`, `gold.volatility_forecasts`), the drift check (`gold.model_drift`),
   and the **`crypto_price_predictions`** Asset.
6. `build_forecast_views`: gold's forecasting views built and tested by dbt
   (`crypto_analytics.dbt_runner.build_result_views`) over everything the run wrote, so their
   data tests run when their data changes (the 15-minute gold build leaves them out).

Tokens with too little history, pegged or constant series and stale tokens are skipped with the
reason (`gold.forecast_skips`), never a failed run. Between trainings, `ml_inference` refreshes the
forecasts whenever gold is rebuilt. Param `as_of` (YYYY-MM-DD) trains on gold up to that day.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from crypto_assets import PREDICTIONS

from crypto_analytics.contract import (
    DAG_START_DATE,
    DEFAULT_TASK_ARGS,
    FORECASTING_VIEWS,
    ML_TRAINING_POOL,
    ML_TRAINING_SCHEDULE,
)

log = logging.getLogger(__name__)


@dag(
    schedule=ML_TRAINING_SCHEDULE,
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    doc_md=__doc__,
    tags=["ml", "forecasting"],
    default_args=DEFAULT_TASK_ARGS,
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            description="Train on gold up to this day (YYYY-MM-DD); empty = everything",
        ),
    },
)
def ml_training() -> None:
    @task
    def prepare_training_data(params: dict[str, Any] | None = None) -> str:
        """Gold features, folds and jobs into a run folder; returns the plan's path."""
        from datetime import date

        from crypto_ml.forecasting.pipeline import prepare_training

        chosen = (params or {}).get("as_of")
        run_id = get_current_context()["run_id"]
        plan_path = prepare_training(
            as_of=date.fromisoformat(chosen) if chosen else None,
            run_name="".join(c if c.isalnum() else "-" for c in run_id)[:60],
        )
        return str(plan_path)

    @task
    def list_training_jobs(plan_path: str) -> list[str]:
        """The plan's job labels, for the mapped training tasks."""
        from crypto_ml.forecasting.pipeline import Plan

        return [job.label for job in Plan.load(plan_path).jobs]

    @task(pool=ML_TRAINING_POOL, map_index_template="{{ job_label }}")
    def train_models(plan_path: str, label: str) -> str:
        """Backtest one family (or one group of tokens of a per-token family) and fit it."""
        from crypto_ml.forecasting.pipeline import train_job

        get_current_context()["job_label"] = label  # type: ignore[typeddict-unknown-key]
        return str(train_job(plan_path, label))

    @task(pool=ML_TRAINING_POOL)
    def evaluate_models(plan_path: str, results: list[str]) -> str:
        """Ensemble, metrics, importance and skips into schema ml (one transaction)."""
        from crypto_ml.forecasting.pipeline import evaluate_training

        log.info("evaluating %d job results", len(list(results)))
        return str(evaluate_training(plan_path))

    @task
    def register_models(plan_path: str, evaluation_path: str) -> dict[str, Any]:
        """MLflow runs, registry versions and the champion decision."""
        from dataclasses import asdict

        from crypto_ml.forecasting.pipeline import register_training

        summary = register_training(plan_path)
        log.info("champion: %s (%s)", summary.champion, summary.reason)
        return asdict(summary)

    @task(outlets=[PREDICTIONS])
    def predict_prices(registration: dict[str, Any]) -> dict[str, Any]:
        """Forecasts from the new versions, the drift check, the predictions Asset."""
        from dataclasses import asdict

        from crypto_ml.forecasting.pipeline import predict

        summary = predict()
        get_current_context()["outlet_events"][PREDICTIONS].extra = {
            "as_of": summary.as_of,
            "predictions": summary.predictions,
            "champion": summary.champion,
        }
        return asdict(summary)

    @task
    def build_forecast_views() -> dict[str, Any]:
        """Build and test gold's forecasting views over everything this run wrote."""
        from dataclasses import asdict

        from crypto_analytics.dbt_runner import build_result_views

        return asdict(build_result_views(FORECASTING_VIEWS))

    plan_path = prepare_training_data()
    results = train_models.partial(plan_path=plan_path).expand(label=list_training_jobs(plan_path))
    evaluation = evaluate_models(plan_path, results)
    predict_prices(register_models(plan_path, evaluation)) >> build_forecast_views()


ml_training()
