"""
### Silver transformation: dbt models under `models/silver`, each followed by its tests

Scheduled on the **`crypto_bronze`** Asset, so it runs after every bronze run that landed new rows.
Cosmos renders one `run` task and one `test` task per model (staging views over bronze, cleaned
candles, returns and risk, technical indicators, the token universe) from the pre-built manifest
`dbt/target/manifest.json`; a model runs only after the models it selects from have been built
*and tested*, so a failing test stops everything downstream of it.

`announce_silver` emits the **`crypto_silver`** Asset (which schedules the gold DAG) only when every
model built and every test passed: gold never reads a silver layer that failed its tests.

dbt connects to the platform's warehouse (CRYPTO_DATABASE_URL, or the embedded server) through the
DBT_* variables `crypto_analytics.dbt_runner.dbt_env` fills before each task. After changing the
dbt project, rebuild the manifest: `python -m crypto_analytics.airflow_local manifest`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from crypto_assets import BRONZE, SILVER
from crypto_dbt import dbt_layer

log = logging.getLogger(__name__)


@dag(
    schedule=[BRONZE],
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    tags=["silver", "dbt"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=1)},
)
def silver_transformation() -> None:
    models = dbt_layer("transform_silver", "silver")

    @task(outlets=[SILVER])
    def announce_silver() -> None:
        """Emit the silver Asset once every silver model is built and tested."""
        log.info("silver built and tested: announcing it to gold")

    models >> announce_silver()


silver_transformation()
