"""
### Gold aggregation: the dbt marts under `models/gold`, each followed by its tests

Scheduled on the **`crypto_silver`** Asset, so it runs after every silver run whose models and tests
all passed. `transform_gold.dbt_producer_watcher` runs the layer as ONE `dbt build` (daily
metrics, category metrics, correlations, the data-quality summary, and the gold views over the
analytics results); every mart has a `run` and a `test` task that follow that build (Cosmos
watcher mode). Gold's relationship tests to `silver.token_universe` run here, after the marts.

`announce_gold` emits the **`crypto_gold`** Asset (for the dashboard, the alerts and the ML jobs)
only when every mart built and every test passed.
The last task, `refresh_serving_cache`, invalidates the dashboard's cached query results
(`crypto_analytics.serving_cache`: Redis when REDIS_URL is set), so the dashboard shows the new
gold at once instead of after its five-minute cache.

dbt connects to the platform's warehouse (CRYPTO_DATABASE_URL, or the embedded server) through the
DBT_* variables `crypto_analytics.dbt_runner.dbt_env` fills before each task. The tasks are
rendered from `dbt/target_airflow/gold.ls.json`: after changing the dbt project run
`make dbt-parse` (`make up` does it when a dbt file is newer).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import dag, task
from crypto_assets import GOLD, SILVER
from crypto_dbt import dbt_layer

from crypto_analytics.contract import DAG_START_DATE, DAG_TAGS, DEFAULT_TASK_ARGS, GOLD_DAG_ID

log = logging.getLogger(__name__)


@dag(
    dag_id=GOLD_DAG_ID,
    schedule=[SILVER],
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    tags=DAG_TAGS[GOLD_DAG_ID],
    default_args=DEFAULT_TASK_ARGS,
)
def gold_aggregation() -> None:
    marts = dbt_layer("transform_gold", "gold")

    @task(outlets=[GOLD])
    def announce_gold() -> None:
        """Emit the gold Asset once every mart is built and tested."""
        log.info("gold built and tested: announcing it")

    @task
    def refresh_serving_cache() -> None:
        """Invalidate the dashboard's cached query results: gold has just changed. After the
        announcement, so a cache failure (Redis down) shows here without holding gold back."""
        from crypto_analytics.serving_cache import refresh

        refresh()

    marts >> announce_gold() >> refresh_serving_cache()


gold_aggregation()
