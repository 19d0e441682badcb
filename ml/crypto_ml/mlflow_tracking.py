"""MLflow on the platform's own warehouse server: where runs go, their experiments, the UI server.

Why the warehouse server: the tracking and registry backend store is a database of its own
(`ml.mlflow.database`, default `mlflow`) beside the warehouse and Airflow's metadata, embedded or
CRYPTO_DATABASE_URL's, so the platform needs no second database server. Training and prediction
write to that store directly (no server needs to be up for `crypto-analytics ml train`), and
`make mlflow` serves the UI on :5000 from the same store. Artifacts are plain files under
`ml.mlflow.artifacts_dir` (data/mlflow): every experiment is created with its artifact location
there, so the UI server, the CLI and Airflow tasks on this machine read the same files.
MLFLOW_TRACKING_URI (or ml.mlflow.tracking_uri) points everything at another server instead.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from crypto_analytics.config import Settings
from crypto_analytics.warehouse import database_url, ensure_database

log = logging.getLogger(__name__)

TRACKING_ENV = "MLFLOW_TRACKING_URI"
#: MLflow's server starts job workers (~2 GB) unless told not to; we run no MLflow jobs.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def sqlalchemy_url(libpq_url: str) -> str:
    """The SQLAlchemy spelling MLflow's store needs; a Unix-socket host stays in `?host=`.
    psycopg2, as Airflow's metadata database uses: MLflow's store with psycopg 3 logs a
    spurious "pipeline aborted" warning on every logged model."""
    return urlunsplit(("postgresql+psycopg2", *urlsplit(libpq_url)[1:]))


def backend_store_uri(settings: Settings) -> str:
    """The MLflow database on the warehouse server (created when missing)."""
    url = ensure_database(database_url(settings), settings.ml.mlflow.database)
    return sqlalchemy_url(url)


def tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI, else ml.mlflow.tracking_uri, else the warehouse server's store."""
    return (
        os.environ.get(TRACKING_ENV)
        or settings.ml.mlflow.tracking_uri
        or backend_store_uri(settings)
    )


def artifacts_root(settings: Settings) -> Path:
    root = settings.resolve(settings.ml.mlflow.artifacts_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def configure(settings: Settings):  # noqa: ANN201 - mlflow.MlflowClient, imported lazily
    """Point mlflow at the platform's tracking store and registry; returns a client for it."""
    import mlflow

    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for noisy in ("alembic", "mlflow.store.db.utils", "mlflow.utils.requirements_utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_name(settings: Settings, family: str) -> str:
    """One experiment per model family, e.g. crypto-forecast-lstm, crypto-volatility-garch."""
    kind = "volatility" if family in ("garch", "rolling_30d") else "forecast"
    return f"{settings.ml.mlflow.experiment_prefix}-{kind}-{family}"


def ensure_experiment(client, settings: Settings, family: str) -> str:  # noqa: ANN001
    """The family's experiment id, creating it with its artifacts under data/mlflow."""
    name = experiment_name(settings, family)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = (artifacts_root(settings) / name).as_uri()
    log.info("creating MLflow experiment %s (artifacts in %s)", name, location)
    return str(client.create_experiment(name, artifact_location=location))


def server_command(settings: Settings) -> list[str]:
    """`mlflow server` on the warehouse server's store, UI on ml.mlflow.host:port."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri(settings),
        "--artifacts-destination",
        artifacts_root(settings).as_uri(),
        "--host",
        settings.ml.mlflow.host,
        "--port",
        str(settings.ml.mlflow.port),
        "--workers",
        "1",
    ]
