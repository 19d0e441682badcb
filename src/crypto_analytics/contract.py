"""Facts the DAG files, the packages and the dashboard must agree on, written once.

Why a module of plain values: DAG files import it at parse time, so it must stay free of heavy
imports (no pandas, no airflow, no I/O); the packages import it so a value such as an Asset URI
or the number of periods in a crypto year can never drift between the file that emits something
and the code that reads it.
"""

from __future__ import annotations

from datetime import timedelta
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

#: The login role the dashboard reads gold with (migration 0007_dashboard_reader.sql creates it;
#: `crypto-analytics db init` sets its password from DASHBOARD_DB_PASSWORD). Roles are per server.
DASHBOARD_READER_ROLE: Final = "dashboard_reader"

#: The dashboard's pages: (menu section, URL path, title, script under streamlit/). streamlit/app.py
#: builds its menu from this, and the browser checks and `make bench` visit the same URLs. The
#: first page is the default, served at "/" (Streamlit ignores a default page's URL path).
DASHBOARD_PAGES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("Markets", "", "Live prices", "pages/live_prices.py"),
    ("Markets", "technical", "Technical analysis", "pages/technical_analysis.py"),
    ("Markets", "correlation", "Correlation", "pages/correlation.py"),
    ("Markets", "categories", "Categories", "pages/categories.py"),
    ("Models", "portfolio", "Portfolio optimiser", "pages/portfolio.py"),
    ("Models", "predictions", "Price predictions", "pages/predictions.py"),
    ("Operations", "alerts", "Alerts", "pages/alerts.py"),
    ("Operations", "health", "Data health", "pages/data_health.py"),
)
