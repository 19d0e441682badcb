"""
### Gold aggregation: dbt marts under `models/gold`, each followed by its tests

Scheduled on the **`crypto_silver`** Asset, so it runs after every silver run whose models and tests
all passed. Cosmos renders one `run` task and one `test` task per mart (daily metrics, category
metrics, correlations, the data-quality summary) from the pre-built manifest
`dbt/target/manifest.json`. The relationship tests from gold to `silver.token_universe` run here.

`announce_gold` emits the **`crypto_gold`** Asset (for the dashboard and the ML jobs) only when every
mart built and every test passed.

dbt connects to the platform's warehouse (CRYPTO_DATABASE_URL, or the embedded server) through the
DBT_* variables `crypto_analytics.dbt_runner.dbt_env` fills before each task. After changing the
dbt project, rebuild the manifest: `python -m crypto_analytics.airflow_local manifest`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from crypto_assets import GOLD, SILVER
from crypto_dbt import dbt_layer

log = logging.getLogger(__name__)


@dag(
    schedule=[SILVER],
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    tags=["gold", "dbt"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=1)},
)
def gold_aggregation() -> None:
    marts = dbt_layer("transform_gold", "gold")

    @task(outlets=[GOLD])
    def announce_gold() -> None:
        """Emit the gold Asset once every mart is built and tested."""
        log.info("gold built and tested: announcing it")

    marts >> announce_gold()


gold_aggregation()
