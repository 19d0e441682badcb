"""Facts the DAG files, the packages and the dashboard must agree on, written once.

Why a module of plain values: DAG files import it at parse time, so it must stay free of heavy
imports (no pandas, no airflow, no I/O); the packages import it so a value such as an Asset URI
or the number of periods in a crypto year can never drift between the file that emits something
and the code that reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

#: Crypto markets never close: annualise daily figures with 365 periods, not 252.
PERIODS_PER_YEAR: Final = 365

#: Asset URIs that chain the DAGs. They name the logical warehouse (`warehouse:5432/crypto`), not a
#: connection, so an Asset's identity does not change between CRYPTO_DATABASE_URL and the embedded
#: server. Postgres Asset URIs must be postgres://host:port/database/schema/table.
ASSET_GROUP: Final = "crypto_warehouse"
BRONZE_ASSET_URI: Final = "postgres://warehouse:5432/crypto/bronze/raw_crypto_prices"
SILVER_ASSET_URI: Final = "postgres://warehouse:5432/crypto/silver/crypto_prices_cleaned"
GOLD_ASSET_URI: Final = "postgres://warehouse:5432/crypto/gold/daily_crypto_metrics"

#: dbt vars of the scheduled builds (the Airflow silver and gold DAGs): the data tests of the large
#: incremental tables check only the rows no passing test run has checked yet
#: (dbt/macros/tests/untested_rows.sql). Builds run by hand leave them out and test every row.
SCHEDULED_DBT_VARS: Final[dict[str, Any]] = {"incremental_tests": True}

#: Default arguments every DAG starts from (a DAG may override retry_delay for its own reasons).
DEFAULT_TASK_ARGS: Final[dict[str, Any]] = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}

#: The pipeline's DAG ids, in the order one cycle runs them (bronze -> silver -> gold by Assets).
BRONZE_DAG_ID: Final = "bronze_ingestion"
SILVER_DAG_ID: Final = "silver_transformation"
GOLD_DAG_ID: Final = "gold_aggregation"
PIPELINE_DAG_IDS: Final = (BRONZE_DAG_ID, SILVER_DAG_ID, GOLD_DAG_ID)

#: Tags of each pipeline DAG (the Airflow UI filters by them).
DAG_TAGS: Final[dict[str, list[str]]] = {
    BRONZE_DAG_ID: ["bronze", "ingestion"],
    SILVER_DAG_ID: ["silver", "dbt"],
    GOLD_DAG_ID: ["gold", "dbt"],
}

#: Every 15 minutes: the bronze DAG's schedule; silver and gold follow by Asset.
BRONZE_SCHEDULE: Final = "*/15 * * * *"

#: The weekly portfolio run (crypto_ml.portfolio): Mondays 00:00 UTC; its run date is the Monday
#: and it uses data dated before it.
PORTFOLIO_DAG_ID: Final = "portfolio_optimization"
PORTFOLIO_SCHEDULE: Final = "0 0 * * 1"

#: Forecasting (crypto_ml.forecasting): the nightly training, and the prediction refresh that
#: follows every gold update. Training tasks take a slot of the pool ML_TRAINING_POOL (created by
#: `make up` with ml.pool_slots slots), so a night's jobs never crowd the other DAGs off 2 cores.
ML_TRAINING_DAG_ID: Final = "ml_training"
ML_INFERENCE_DAG_ID: Final = "ml_inference"
ML_TRAINING_SCHEDULE: Final = "0 2 * * *"
ML_TRAINING_POOL: Final = "ml_training"
PREDICTIONS_ASSET_URI: Final = "postgres://warehouse:5432/crypto/gold/price_predictions"

#: Alerts (crypto_analytics.alerts): every rule is evaluated after each gold build and each
#: forecast refresh (its drift check), and also on this clock, so data that stops arriving is
#: noticed even when nothing upstream runs.
ALERTS_DAG_ID: Final = "alert_evaluation"
ALERTS_SCHEDULE: Final = "*/30 * * * *"

#: start_date of every DAG (with catchup=False it only has to lie in the past).
DAG_START_DATE: Final = datetime(2024, 1, 1, tzinfo=UTC)

#: Fetches of one bronze run that may hold an executor slot at once: a hanging source then never
#: takes every slot of a 2-core machine's executor, so loads and checks always find one.
MAX_ACTIVE_FETCHES: Final = 2

#: The dbt layers (folders under dbt/models) that each have a DAG, and where `make dbt-parse`
#: writes what those DAGs are rendered from (one `dbt ls` file per layer, under the dbt project):
#: a folder of its own, so `make docs` or a `crypto-analytics dbt ...` run never overwrites it.
DBT_LAYERS: Final = ("silver", "gold")
DBT_AIRFLOW_TARGET: Final = "target_airflow"
#: One file per layer and Cosmos execution mode: "watcher" (the default: one build per layer,
#: tasks for the models that store data) and "local" (a dbt process per model: every model).
DBT_LS_FILE_NAME: Final = "{layer}.{mode}.ls.json"
DBT_EXECUTION_MODES: Final = ("watcher", "local")

#: How a layer's scheduled build selects its nodes besides `--select path:models/<layer>`:
#: buildable indirect selection runs a test in the layer whose models it reads, once all of them
#: are built (gold's relationships to silver.token_universe run with gold, never before gold);
#: unit tests check SQL on fixed inputs, so CI runs them and scheduled builds leave them out.
DBT_INDIRECT_SELECTION: Final = "buildable"
DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES: Final = ("unit_test",)

#: Tests tagged this check what a view's SQL guarantees over upstream relations whose keys are
#: enforced by unique indexes or primary keys and whose values by contracts or by tests that gate
#: the layer (a dashboard view's grain, its VWAP's sign), or by the view's own SQL (a `group by`
#: or `distinct on` its grain, a `case` with an `else`): their outcome changes only when the SQL
#: does, which CI and every build by hand (`make demo`, `crypto-analytics dbt build`) check. The
#: scheduled builds leave them out instead of re-reading the views every 15 minutes.
DBT_SQL_INVARIANT_TAG: Final = "sql_invariant"
DBT_SCHEDULED_EXCLUDES: Final = (f"tag:{DBT_SQL_INVARIANT_TAG}",)

#: The gold views over results Python writes, per area: the dbt selection the DAG that writes an
#: area's results builds and tests right after writing them
#: (crypto_analytics.dbt_runner.build_result_views), so their data tests run when their data
#: changes. No gold mart reads them, so the 15-minute gold build leaves them out
#: (DBT_LAYER_EXCLUDES); `make demo`, `crypto-analytics dbt build` by hand and `dbt docs` still
#: cover the whole project, and the lineage is the same. The alert views include the stream's
#: (heartbeat, live candles): the alert DAG, every 30 minutes at the latest, tests them.
FORECASTING_VIEWS: Final = "forecasting"
PORTFOLIO_VIEWS: Final = "portfolio"
ALERT_VIEWS: Final = "alerts"
DBT_RESULT_VIEWS: Final[dict[str, str]] = {
    FORECASTING_VIEWS: "path:models/gold/forecasting",
    PORTFOLIO_VIEWS: "path:models/gold/portfolio",
    ALERT_VIEWS: "path:models/gold/alerts",
}
#: Their builds select every test of the area's views, including relationships to
#: silver.token_universe (a view does not read it, so buildable selection would drop them).
DBT_RESULT_VIEWS_INDIRECT_SELECTION: Final = "eager"
#: What each layer's scheduled build (and so its DAG, and its `dbt ls` file) leaves out.
DBT_LAYER_EXCLUDES: Final[dict[str, tuple[str, ...]]] = {
    "silver": DBT_SCHEDULED_EXCLUDES,
    "gold": (*DBT_RESULT_VIEWS.values(), *DBT_SCHEDULED_EXCLUDES),
}

#: Models a layer's DAG builds inside its one `dbt build` but shows no task for: views (the
#: staging views over bronze, gold's views over the Python-written results) store nothing and
#: cost nothing to build, while every task costs an Airflow process start on a 2-core machine.
#: A failing view or view test fails the build task, which names it.
DBT_UNRENDERED_MATERIALIZATIONS: Final = ("view", "ephemeral")

#: The login role the dashboard reads gold with (migration 0007_dashboard_reader.sql creates it;
#: `crypto-analytics db init` sets its password from DASHBOARD_DB_PASSWORD). Roles are per server.
DASHBOARD_READER_ROLE: Final = "dashboard_reader"

#: The dashboard's pages: (menu section, URL path, title, script under streamlit/). streamlit/app.py
#: builds its menu from this, and the browser checks and `make bench` visit the same URLs. The
#: first page is the default, served at "/" (Streamlit ignores a default page's URL path).
DASHBOARD_PAGES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("Markets", "", "Live prices", "app_pages/live_prices.py"),
    ("Markets", "technical", "Technical analysis", "app_pages/technical_analysis.py"),
    ("Markets", "correlation", "Correlation", "app_pages/correlation.py"),
    ("Markets", "categories", "Categories", "app_pages/categories.py"),
    ("Models", "portfolio", "Portfolio optimiser", "app_pages/portfolio.py"),
    ("Models", "predictions", "Price predictions", "app_pages/predictions.py"),
    ("Operations", "alerts", "Alerts", "app_pages/alerts.py"),
    ("Operations", "health", "Data health", "app_pages/data_health.py"),
)
