"""An isolated Airflow for the DAG tests: its own AIRFLOW_HOME and SQLite metadata DB per session.

Airflow reads its configuration when it is first imported, so the environment is set here, at
conftest import, before any test module imports airflow. Nothing touches a developer's ~/airflow
or the `make up` instance under .data/airflow. The dags folder goes on sys.path the way Airflow's
own parser puts it there, so `crypto_assets` imports as it does in production.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "airflow" / "dags"
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-tests-"))

if "airflow" in sys.modules:  # pragma: no cover - only when another plugin imported it first
    raise RuntimeError("airflow was imported before tests/dags/conftest.py could configure it")

os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(_AIRFLOW_HOME / "cosmos"),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "crypto_analytics_tests",
    }
)
if str(DAGS_FOLDER) not in sys.path:
    sys.path.append(str(DAGS_FOLDER))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """Create Airflow's metadata tables once per session (≈ 2 s on SQLite)."""
    from airflow.utils import db

    db.initdb()
    yield


@pytest.fixture(scope="session")
def dbt_dag_inputs() -> dict[str, Path]:
    """The watcher-mode `dbt ls` file of each dbt layer (what the silver and gold DAGs are
    rendered from; the per-model mode's file lies beside it), rebuilt first when a dbt file is
    newer (as `make up` does), so the DAGs always render the models in the checkout."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.contract import DBT_LAYERS
    from crypto_analytics.dbt_artifacts import (
        artifacts_are_stale,
        build_airflow_artifacts,
        layer_ls_path,
    )

    settings = get_settings()
    if artifacts_are_stale(settings):
        build_airflow_artifacts(settings)
    return {layer: layer_ls_path(layer, settings) for layer in DBT_LAYERS}


def parse_dags(folder_or_file: Path = DAGS_FOLDER):
    """Parse DAG files the way the dag-processor does (the dags folder joins sys.path)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(
        dag_folder=folder_or_file, bundle_path=DAGS_FOLDER, bundle_name="dags-folder"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`dag_file`: one test per DAG file of the folder (today's and any added later)."""
    if "dag_file" in metafunc.fixturenames:
        files = sorted(DAGS_FOLDER.glob("*_dag.py"))
        metafunc.parametrize("dag_file", files, ids=[p.stem for p in files])


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    """The dags folder, for tests that parse part of it. Tests take these helpers as fixtures:
    `from conftest import ...` resolves to whichever folder's conftest was imported first as
    `conftest` when several test folders run in one session (tests/dbt has one too)."""
    return DAGS_FOLDER


@pytest.fixture(scope="session")
def expected_dag_ids() -> set[str]:
    """The DAG id of every DAG file: its stem without `_dag` (the convention the tests check)."""
    return {path.stem.removesuffix("_dag") for path in DAGS_FOLDER.glob("*_dag.py")}


@pytest.fixture(scope="session")
def dag_parser():
    """`parse_dags`, as a fixture (see `dags_folder`)."""
    return parse_dags


@pytest.fixture(scope="session")
def dag_bag(dbt_dag_inputs: dict[str, Path]):
    """Every DAG file parsed once."""
    return parse_dags()


@pytest.fixture(scope="session")
def bronze_dag_bag():
    """Only the bronze DAG file: its tests must not depend on the dbt project's state."""
    bag = parse_dags(DAGS_FOLDER / "bronze_ingestion_dag.py")
    assert bag.import_errors == {}
    return bag


def _dbt_tests_since(url: str, started) -> dict[str, str]:
    """Model (or source) name -> worst status of the dbt data tests that ran on it since
    `started`, from dbt's own record of every test (public.dbt_test_results)."""
    from crypto_analytics.warehouse import connect

    rank = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
    worst: dict[str, str] = {}
    with connect(url) as conn:
        rows = conn.execute(
            "select tested_node, status from public.dbt_test_results"
            " where run_started_at >= %s and resource_type = 'test'",
            (started,),
        ).fetchall()
    for node, status in rows:
        name = node.rsplit(".", 1)[-1]
        if rank.get(status, 3) >= rank.get(worst.get(name, "pass"), 3):
            worst[name] = status
    return worst


@pytest.fixture(scope="session")
def dbt_tests_since():
    """What the DAG tests ask of a run's dbt tests: which nodes were tested, and how they fared."""
    return _dbt_tests_since
