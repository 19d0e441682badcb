"""The Assets that chain the layers, defined once for the producers and consumers to import.

Why a module beside the DAG files: the dags folder is on sys.path wherever Airflow parses or runs
them, so importing from here costs nothing and the URIs can never drift apart between the file
that emits an Asset and the file scheduled on it. `.airflowignore` keeps the parser from treating
this file as a DAG file.

The URIs name the logical warehouse (`warehouse:5432/crypto`), not a connection: the same
deployment is reached through CRYPTO_DATABASE_URL or the embedded server's Unix socket, and an
Asset's identity must not change with that. Postgres Asset URIs must have the shape
postgres://host:port/database/schema/table, so each layer is named by its main table.
"""

from __future__ import annotations

from airflow.sdk import Asset

BRONZE = Asset(
    name="crypto_bronze",
    uri="postgres://warehouse:5432/crypto/bronze/raw_crypto_prices",
    group="crypto_warehouse",
)

SILVER = Asset(
    name="crypto_silver",
    uri="postgres://warehouse:5432/crypto/silver/crypto_prices_cleaned",
    group="crypto_warehouse",
)

GOLD = Asset(
    name="crypto_gold",
    uri="postgres://warehouse:5432/crypto/gold/daily_crypto_metrics",
    group="crypto_warehouse",
)
