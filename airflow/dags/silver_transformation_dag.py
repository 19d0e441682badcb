"""
### Silver transformation: the dbt models under `models/silver`, each followed by its tests

Scheduled on the **`crypto_bronze`** Asset, so it runs after every bronze run that landed new rows.
`transform_silver.dbt_producer_watcher` runs the layer as ONE `dbt build` (staging views over
bronze, cleaned candles, returns and risk, technical indicators, the token universe; each model's
tests right after it, so a failing test stops what depends on it). Every model has a `run` task
and a `test` task that follow that build's events (Cosmos watcher mode), so the grid shows which
model or test failed; clearing one of them re-runs that model or its tests alone.

`announce_silver` emits the **`crypto_silver`** Asset (which schedules the gold DAG) only when every
model built and every test passed: gold never reads a silver layer that failed its tests.

dbt connects to the platform's warehouse (CRYPTO_DATABASE_URL, or the embedded server) through the
DBT_* variables `crypto_analytics.dbt_runner.dbt_env` fills before each task. The tasks are
rendered from `dbt/target_airflow/silver.ls.json`: after changing the dbt project run
`make dbt-parse` (`make up` does it when a dbt file is newer).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import dag, task
from crypto_assets import BRONZE, SILVER
from crypto_dbt import dbt_layer

from crypto_analytics.contract import DAG_START_DATE, DAG_TAGS, DEFAULT_TASK_ARGS, SILVER_DAG_ID

log = logging.getLogger(__name__)


@dag(
    dag_id=SILVER_DAG_ID,
    schedule=[BRONZE],
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    tags=DAG_TAGS[SILVER_DAG_ID],
    default_args=DEFAULT_TASK_ARGS,
)
def silver_transformation() -> None:
    models = dbt_layer("transform_silver", "silver")

    @task(outlets=[SILVER])
    def announce_silver() -> None:
        """Emit the silver Asset once every silver model is built and tested."""
        log.info("silver built and tested: announcing it to gold")

    models >> announce_silver()


silver_transformation()
