"""How the silver and gold DAGs render the dbt project with Cosmos, configured once.

Why these choices:
- LoadMode.DBT_MANIFEST from the pre-built dbt/target/manifest.json: parsing a DAG file then reads
  one JSON file (≈ 0.4 s) instead of running `dbt ls` (seconds, and a subprocess) on every parse.
  `python -m crypto_analytics.airflow_local manifest` (run by `make up`) rebuilds it.
- InvocationMode.DBT_RUNNER: dbt runs inside the task's process (no `dbt` executable path, which
  must not be set together with DBT_RUNNER).
- TestBehavior.AFTER_EACH: every model is a `run` task followed by its `test` task, so a failing
  test names its model in the grid and stops what depends on it.
- Cautious indirect selection plus detached multi-model tests: each model's test task runs the
  tests of that model alone, and a test reading several models (a relationships test) is a task
  of its own after all of them, in the layer whose YAML defines it. So every test runs exactly
  once and never before the models it reads are built (tests/dags checks this on the manifest).
- The profile is dbt/profiles.yml, which reads only DBT_* variables. They are filled right before
  each task runs from the platform's one warehouse setting (CRYPTO_DATABASE_URL, or the embedded
  server) by `crypto_analytics.dbt_runner.dbt_env`, so no connection details live in Airflow.

`.airflowignore` keeps the parser from treating this module as a DAG file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cosmos import (
    DbtTaskGroup,
    ExecutionConfig,
    ProfileConfig,
    ProjectConfig,
    RenderConfig,
)
from cosmos.constants import (
    DbtResourceType,
    InvocationMode,
    LoadMode,
    TestBehavior,
    TestIndirectSelection,
)

#: The dbt project: $DBT_PROJECT_DIR (as crypto_analytics.dbt_runner reads it), else <repo>/dbt.
DBT_PROJECT_DIR = Path(
    os.environ.get("DBT_PROJECT_DIR") or Path(__file__).resolve().parents[2] / "dbt"
)
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
MANIFEST_COMMAND = "python -m crypto_analytics.airflow_local manifest"
#: What scheduled builds pass to dbt: data tests of the large tables read only rows no passing
#: run has tested yet (dbt/macros/tests/untested_rows.sql). A literal, not an import, to keep
#: parsing free of the package; it must equal crypto_analytics.dbt_runner.SCHEDULED_DBT_VARS
#: (tests/dags checks), and the manifest is parsed with the same vars.
SCHEDULED_DBT_VARS: dict[str, Any] = {"incremental_tests": True}


def point_dbt_at_warehouse(context: Any) -> None:
    """on_execute_callback: set the DBT_* variables profiles.yml reads, for this task's process.

    Cosmos passes the process environment to dbt, so dbt connects to the same warehouse as the
    ingestion tasks, whether that is CRYPTO_DATABASE_URL or the embedded server's Unix socket.
    """
    from crypto_analytics.dbt_runner import dbt_env

    os.environ.update(dbt_env())


def _drop_tests_of_other_layers(group: DbtTaskGroup, layer: str) -> None:
    """Remove the detached test tasks whose test is defined outside models/<layer>.

    Cosmos attaches a test to every selected model it reads, so the silver group would also get
    gold's relationship tests to silver.token_universe and run them before gold is built (and
    again, stale, on later runs). The gold group renders and runs them after the gold models.
    """
    own = DBT_PROJECT_DIR / "models" / layer
    for node_id, task in list(group.tasks_map.items()):
        node = group.dbt_graph.filtered_nodes.get(node_id)
        if node is None or node.resource_type is not DbtResourceType.TEST:
            continue
        if (DBT_PROJECT_DIR / node.original_file_path).is_relative_to(own):
            continue
        for upstream in task.upstream_list:
            upstream.downstream_task_ids.discard(task.task_id)
        for downstream in task.downstream_list:
            downstream.upstream_task_ids.discard(task.task_id)
        task.task_group._remove(task)
        del task.dag.task_dict[task.task_id]
        del group.tasks_map[node_id]


def dbt_layer(group_id: str, layer: str, **task_group_kwargs: Any) -> DbtTaskGroup:
    """A task group with a run task and a test task for every model under models/<layer>, and a
    task of its own for each test of the layer that reads several models, after all of them."""
    if not MANIFEST_PATH.is_file():
        raise FileNotFoundError(
            f"dbt manifest {MANIFEST_PATH} is missing: build it with `{MANIFEST_COMMAND}` "
            "(`make up` does this)"
        )
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=MANIFEST_PATH,
            project_name="crypto_analytics",
            install_dbt_deps=False,  # no packages: dbt_utils-style tests live in dbt/macros
            dbt_vars=SCHEDULED_DBT_VARS,
        ),
        profile_config=ProfileConfig(
            profile_name="crypto_analytics",
            target_name="default",
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=[f"path:models/{layer}"],
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
            # One Asset per layer is the scheduling contract; Cosmos's per-model Assets would name
            # the physical host and database, so they would differ between deployments.
            emit_datasets=False,
        ),
        operator_args={"on_execute_callback": point_dbt_at_warehouse},
        **task_group_kwargs,
    )
    _drop_tests_of_other_layers(group, layer)
    return group
