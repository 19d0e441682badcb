"""The Assets that chain the layers, defined once for the producers and consumers to import.

Why a module beside the DAG files: the dags folder is on sys.path wherever Airflow parses or runs
them, so importing from here costs nothing and the URIs can never drift apart between the file
that emits an Asset and the file scheduled on it. `.airflowignore` keeps the parser from treating
this file as a DAG file.

The URIs themselves live in `crypto_analytics.contract` (plain values, no heavy imports), which
the package reads too.
"""

from __future__ import annotations

from airflow.sdk import Asset

from crypto_analytics.contract import (
    ASSET_GROUP,
    BRONZE_ASSET_URI,
    GOLD_ASSET_URI,
    PREDICTIONS_ASSET_URI,
    SILVER_ASSET_URI,
)

BRONZE = Asset(name="crypto_bronze", uri=BRONZE_ASSET_URI, group=ASSET_GROUP)
SILVER = Asset(name="crypto_silver", uri=SILVER_ASSET_URI, group=ASSET_GROUP)
GOLD = Asset(name="crypto_gold", uri=GOLD_ASSET_URI, group=ASSET_GROUP)
#: Price forecasts refreshed (gold.price_predictions): emitted by ml_training and ml_inference.
PREDICTIONS = Asset(name="crypto_price_predictions", uri=PREDICTIONS_ASSET_URI, group=ASSET_GROUP)
