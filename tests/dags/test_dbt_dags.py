"""The silver and gold DAGs: one dbt build per layer (Cosmos watcher mode) with a task per model
and per model's tests, rendered from the layer's `dbt ls` file, each test in the layer whose
models it reads. The per-model mode (DBT_DAGS_EXECUTION_MODE=local) renders without a test of
another layer too."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from crypto_analytics.contract import (
    DBT_INDIRECT_SELECTION,
    GOLD_DAG_ID,
    SCHEDULED_DBT_VARS,
    SILVER_DAG_ID,
)

LAYERS = {SILVER_DAG_ID: "silver", GOLD_DAG_ID: "gold"}
ANNOUNCERS = {SILVER_DAG_ID: "announce_silver", GOLD_DAG_ID: "announce_gold"}
ASSETS = {
    SILVER_DAG_ID: ("crypto_bronze", "crypto_silver"),
    GOLD_DAG_ID: ("crypto_silver", "crypto_gold"),
}


def _model_of(task_id: str) -> str:
    """`<group>.<model>.run` for a model with tests, `<group>.<model>_run` for one without."""
    parts = task_id.split(".")
    return parts[1] if len(parts) == 3 else parts[1].removesuffix("_run")


def _nodes(ls_file: Path) -> list[dict]:
    return [json.loads(line) for line in ls_file.read_text().splitlines() if line.strip()]


def _models(ls_file: Path) -> set[str]:
    return {n["name"] for n in _nodes(ls_file) if n["resource_type"] == "model"}


def _tested_models(ls_file: Path) -> set[str]:
    models = {n["unique_id"]: n["name"] for n in _nodes(ls_file) if n["resource_type"] == "model"}
    return {
        models[parent]
        for n in _nodes(ls_file)
        if n["resource_type"] == "test"
        for parent in n["depends_on"]["nodes"]
        if parent in models
    }


def _local_file(layer: str) -> Path:
    from crypto_analytics.dbt_artifacts import layer_ls_path

    return layer_ls_path(layer, mode="local")


def test_each_layer_file_holds_its_own_tests_and_no_other_layer_s(dbt_dag_inputs):
    """Buildable selection: gold's relationships to silver.token_universe are gold nodes."""
    silver, gold = (_nodes(_local_file(layer)) for layer in ("silver", "gold"))
    for layer, nodes in (("silver", silver), ("gold", gold)):
        models = [n for n in nodes if n["resource_type"] == "model"]
        assert models and all(
            n["original_file_path"].startswith(f"models/{layer}/") for n in models
        )
        tests = [n for n in nodes if n["resource_type"] == "test"]
        assert tests
        assert all(n["original_file_path"].startswith(f"models/{layer}/") for n in tests), layer
        assert not [n for n in nodes if n["resource_type"] == "unit_test"]
    reads_silver = [
        n for n in gold
        if n["resource_type"] == "test"
        and "model.crypto_analytics.token_universe" in n["depends_on"]["nodes"]
    ]  # fmt: skip
    assert reads_silver, "gold's relationships to silver.token_universe must render with gold"


@pytest.mark.parametrize("layer", ["silver", "gold"])
def test_watcher_files_leave_out_views_and_tests_of_views_only(dbt_dag_inputs, layer):
    every = _nodes(_local_file(layer))
    shown = {n["unique_id"] for n in _nodes(dbt_dag_inputs[layer])}
    views = {
        n["unique_id"]
        for n in every
        if n["resource_type"] == "model" and n["config"]["materialized"] == "view"
    }
    stored = {n["unique_id"] for n in every if n["resource_type"] == "model"} - views
    assert views and stored, "the layer has both views and tables: the check means something"
    assert not views & shown
    assert stored <= shown
    for node in every:
        if node["resource_type"] == "test":
            reads_stored = bool(set(node["depends_on"]["nodes"]) & stored)
            assert (node["unique_id"] in shown) == reads_stored, node["unique_id"]


@pytest.mark.parametrize("dag_id", [SILVER_DAG_ID, GOLD_DAG_ID])
def test_layer_is_one_build_with_a_task_per_model_and_its_tests(dag_bag, dbt_dag_inputs, dag_id):
    from cosmos.operators.watcher import (
        DbtProducerWatcherOperator,
        DbtRunWatcherOperator,
        DbtTestWatcherOperator,
    )

    layer = LAYERS[dag_id]
    ls_file = dbt_dag_inputs[layer]
    dag = dag_bag.dags[dag_id]
    consumes, produces = ASSETS[dag_id]
    assert [a.name for a in dag.timetable.asset_condition.objects] == [consumes]

    producers = [t for t in dag.tasks if isinstance(t, DbtProducerWatcherOperator)]
    assert len(producers) == 1
    build = producers[0]
    assert build.base_cmd == ["build"]
    assert build.select == f"path:models/{layer}"
    assert build.indirect_selection == DBT_INDIRECT_SELECTION
    assert build.dbt_cmd_flags[:2] == ["--exclude-resource-type", "unit_test"]
    assert build.vars == SCHEDULED_DBT_VARS
    assert build.on_execute_callback, "dbt would run without the DBT_* connection variables"

    runs = {_model_of(t.task_id) for t in dag.tasks if isinstance(t, DbtRunWatcherOperator)}
    tests = {_model_of(t.task_id) for t in dag.tasks if isinstance(t, DbtTestWatcherOperator)}
    assert runs == _models(ls_file)
    assert tests == _tested_models(ls_file)
    for task in dag.tasks:
        if isinstance(task, DbtRunWatcherOperator | DbtTestWatcherOperator):
            assert task.deferrable, f"{task.task_id} would hold an executor slot while it waits"
            # failed by Airflow's defer/resume race, it retries in seconds, not after a minute
            assert (task.retries, task.retry_delay) == (2, timedelta(seconds=5)), task.task_id
            assert task.producer_task_id == build.task_id
            # a cleared or retried model task runs `dbt run`, which rejects the build's flag
            assert "--exclude-resource-type" not in task.dbt_cmd_flags, task.task_id

    # The announcer needs every dbt task to have succeeded; it is the only leaf but for gold's
    # refresh of the dashboard's cache right after it (tests/dags/test_gold_cache_refresh.py).
    announcer = ANNOUNCERS[dag_id]
    last = "refresh_serving_cache" if dag_id == GOLD_DAG_ID else announcer
    assert [t.task_id for t in dag.leaves] == [last]
    announce = dag.task_dict[announcer]
    assert announce.trigger_rule == "all_success"
    assert [a.name for a in announce.outlets] == [produces]
    dbt_tasks = {t.task_id for t in dag.tasks if t.task_id not in (announcer, last)}
    assert dbt_tasks <= announce.get_flat_relative_ids(upstream=True)


def test_a_model_waits_for_the_tests_of_the_models_it_reads(dag_bag, dbt_dag_inputs):
    dag = dag_bag.dags[SILVER_DAG_ID]
    # a model without data tests of its own is one task (its rules are contract constraints)
    returns = dag.task_dict["transform_silver.returns_and_risk_run"]
    assert "transform_silver.crypto_prices_cleaned.test" in returns.upstream_task_ids
    gold = dag_bag.dags[GOLD_DAG_ID]
    rolling = gold.task_dict["transform_gold.rolling_correlation.run"]
    assert "transform_gold.daily_crypto_metrics.test" in rolling.upstream_task_ids


def test_per_model_mode_renders_each_test_once_in_its_own_layer(
    dbt_dag_inputs, dag_parser, monkeypatch
):
    """DBT_DAGS_EXECUTION_MODE=local: a dbt process per model and per test task; a test reading
    several models is a task of its own after all of them, in the layer that defines it."""
    import sys

    from cosmos.operators.local import DbtRunLocalOperator, DbtTestLocalOperator

    monkeypatch.setenv("DBT_DAGS_EXECUTION_MODE", "local")
    monkeypatch.delitem(sys.modules, "crypto_dbt", raising=False)
    bag = dag_parser()
    monkeypatch.delitem(sys.modules, "crypto_dbt", raising=False)
    assert bag.import_errors == {}
    for dag_id, layer in LAYERS.items():
        dag = bag.dags[dag_id]
        ls_file = _local_file(layer)
        runs = {_model_of(t.task_id) for t in dag.tasks if isinstance(t, DbtRunLocalOperator)}
        assert runs == _models(ls_file)
        for task in dag.tasks:
            if isinstance(task, DbtRunLocalOperator):  # `dbt run` has no --exclude-resource-type
                assert "--exclude-resource-type" not in task.dbt_cmd_flags, task.task_id
        layer_tests = {n["name"] for n in _nodes(ls_file) if n["resource_type"] == "test"}
        for task in dag.tasks:
            if isinstance(task, DbtTestLocalOperator) and not task.task_id.endswith(".test"):
                name = task.task_id.split(".")[1].removesuffix("_test")
                assert any(t.startswith(name) for t in layer_tests), task.task_id
                assert len(task.upstream_task_ids) >= 1
    gold_relationships = [
        t for t in bag.dags[GOLD_DAG_ID].task_dict if "relationships_daily_crypto_metrics" in t
    ]
    assert len(gold_relationships) == 1
    assert not [t for t in bag.dags[SILVER_DAG_ID].task_dict if "daily_crypto_metrics" in t]


def test_an_unknown_execution_mode_is_a_clear_import_error(
    dbt_dag_inputs, dags_folder, dag_parser, monkeypatch
):
    import sys

    monkeypatch.setenv("DBT_DAGS_EXECUTION_MODE", "kubernetes-please")
    monkeypatch.delitem(sys.modules, "crypto_dbt", raising=False)
    bag = dag_parser(dags_folder / "silver_transformation_dag.py")
    monkeypatch.delitem(sys.modules, "crypto_dbt", raising=False)
    (error,) = bag.import_errors.values()
    assert "DBT_DAGS_EXECUTION_MODE='kubernetes-please'" in error
    assert "watcher, local" in error


def test_a_missing_layer_file_names_the_command_that_builds_it(
    dags_folder, dag_parser, monkeypatch, tmp_path
):
    import sys

    project = tmp_path / "dbt"
    project.mkdir()
    monkeypatch.setenv("DBT_PROJECT_DIR", str(project))
    monkeypatch.delitem(sys.modules, "crypto_dbt", raising=False)
    bag = dag_parser(dags_folder / "gold_aggregation_dag.py")
    monkeypatch.delitem(sys.modules, "crypto_dbt", raising=False)
    (error,) = bag.import_errors.values()
    assert "gold.watcher.ls.json is missing" in error and "make dbt-parse" in error
