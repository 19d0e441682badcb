"""Every DAG file parses cleanly, follows the project's conventions, and does nothing at parse time.

These run without a database: they are what catches a broken DAG before the scheduler does.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from crypto_analytics.config import get_settings


def test_every_dag_file_imports_without_errors(dag_bag, expected_dag_ids):
    assert dag_bag.import_errors == {}
    assert expected_dag_ids == {
        "bronze_ingestion",
        "silver_transformation",
        "gold_aggregation",
        "portfolio_optimization",
        "ml_training",
        "ml_inference",
        "alert_evaluation",
    }
    assert set(dag_bag.dag_ids) == expected_dag_ids


def test_dag_id_is_the_file_stem_and_conventions_hold(dag_bag, dag_file: Path):
    path = dag_file
    dag = dag_bag.dags.get(path.stem.removesuffix("_dag"))
    assert dag is not None, f"{path.name} must define the DAG {path.stem.removesuffix('_dag')}"
    assert Path(dag.fileloc).resolve() == path.resolve()
    assert dag.tags, f"{dag.dag_id} has no tags"
    assert dag.default_args.get("retries", 0) >= 1, f"{dag.dag_id} has no retries"
    assert dag.default_args.get("retry_delay"), f"{dag.dag_id} has no retry_delay"
    assert dag.schedule is not None, f"{dag.dag_id} has no explicit schedule"
    assert dag.catchup is False
    assert dag.doc_md and len(dag.doc_md) > 200, f"{dag.dag_id} is not documented"
    assert dag.start_date is not None and dag.start_date.tzinfo is not None


def test_bronze_schedule_has_one_home(dag_bag):
    """The schedule lives in crypto_analytics.contract; config.yaml must not hold a second copy."""
    from crypto_analytics.contract import BRONZE_SCHEDULE

    dag = dag_bag.dags.get("bronze_ingestion")
    assert dag.schedule == BRONZE_SCHEDULE == "*/15 * * * *"
    assert "bronze_ingestion" not in get_settings().schedules
    assert dag.max_active_runs == 1


def test_bronze_wiring_keeps_other_batches_when_one_fails(dag_bag):
    """The trigger rules that make a failed fetch cost only its own data, and still fail the run;
    and few task instances on the way to the Asset event (each costs seconds to start)."""
    dag = dag_bag.dags.get("bronze_ingestion")
    tasks = dag.task_dict
    assert set(tasks) == {
        "plan_fetches",
        "ingest_batch",
        "check_and_announce",
        "surface_failures",
    }
    assert tasks["ingest_batch"].is_mapped
    # The event follows the run's own checks, over whatever landed.
    assert tasks["check_and_announce"].trigger_rule == "all_done"
    assert tasks["check_and_announce"].upstream_task_ids == {"ingest_batch"}
    assert tasks["check_and_announce"].retries == 0
    # The only leaf decides the run's state, so it must see every other task.
    assert [t.task_id for t in dag.leaves] == ["surface_failures"]
    assert tasks["surface_failures"].trigger_rule == "all_done"
    assert tasks["surface_failures"].retries == 0
    assert tasks["surface_failures"].upstream_task_ids == set(tasks) - {"surface_failures"}
    outlets = {(a.name, a.uri) for t in dag.tasks for a in t.outlets}
    assert outlets == {
        ("crypto_bronze", "postgres://warehouse:5432/crypto/bronze/raw_crypto_prices")
    }
    assert tasks["check_and_announce"].outlets[0].name == "crypto_bronze"


def _refuse(*args, **kwargs):
    raise AssertionError(f"a connection was opened at parse time: {args!r}")


def test_parsing_opens_no_connection_and_reads_no_config(
    dbt_dag_inputs, dag_parser, expected_dag_ids, monkeypatch
):
    """Parse the folder afresh with every way out of the process patched to fail loudly."""
    import psycopg
    import psycopg2

    from crypto_analytics import config

    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(psycopg, "connect", _refuse)
    monkeypatch.setattr(psycopg.Connection, "connect", _refuse)
    monkeypatch.setattr(psycopg2, "connect", _refuse)
    monkeypatch.setattr(config, "find_config_file", _refuse)
    monkeypatch.delitem(sys.modules, "crypto_assets", raising=False)
    config.get_settings.cache_clear()

    bag = dag_parser()

    assert bag.import_errors == {}
    assert set(bag.dag_ids) == expected_dag_ids


_PROBE = """
import json, sys
before = set(sys.modules)
from airflow.dag_processing.dagbag import BundleDagBag
from pathlib import Path
folder = Path(sys.argv[1])
after_airflow = set(sys.modules)
bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": sorted(bag.dag_ids),
                  "new_modules": sorted(set(sys.modules) - after_airflow)}))
"""

#: Modules a DAG file must not pull in at parse time: the pipeline, its heavy dependencies, and
#: dbt itself (Cosmos renders from the `dbt ls` files; dbt is imported only when a task runs).
_HEAVY = (
    "pandas",
    "pyarrow",
    "ccxt",
    "yfinance",
    "pycoingecko",
    "crypto_analytics.ingestion",
    "crypto_analytics.dbt_runner",
    "dbt.",
)


def test_parsing_imports_nothing_heavy(dbt_dag_inputs, dags_folder, expected_dag_ids):
    """In a clean interpreter, so modules other tests imported cannot hide a parse-time import."""
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, str(dags_folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert set(result["dags"]) == expected_dag_ids
    heavy = [m for m in result["new_modules"] if m.startswith(_HEAVY)]
    assert heavy == []
