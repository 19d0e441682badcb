"""How the silver and gold DAGs render their dbt layer with Cosmos, configured once.

Why these choices:
- ExecutionMode.WATCHER: the layer is ONE `dbt build` (the `dbt_producer_watcher` task: one dbt
  start-up, dbt's own threads, tests right after their model), while every model and its tests
  still appear as tasks of their own (sensors that follow the build's events), so the grid shows
  which model failed. The per-model mode (one dbt process per model and per test task) spent most
  of a cycle starting processes: scripts/bench_orchestration.py measures both (README).
  `DBT_DAGS_EXECUTION_MODE=local` renders the per-model mode, e.g. to spread one layer's
  models over several Celery workers.
- LoadMode.DBT_LS_FILE: each layer is rendered from `dbt/<DBT_AIRFLOW_TARGET>/<layer>.<mode>.ls.json`,
  written by `make dbt-parse` (crypto_analytics.dbt_artifacts) with the selection the layer's build
  uses: `path:models/<layer>` less `contract.DBT_LAYER_EXCLUDES` (gold's views over Python-written
  results, which the forecasting, portfolio and alert DAGs build and test right after writing
  them) with *buildable* indirect selection. So a test lives in the layer
  whose models it reads (gold's relationships to silver.token_universe are gold nodes), with no
  task removed after Cosmos built the group, and parsing reads one small file (no dbt, no I/O
  beyond it). In watcher mode views get no task of their own (contract says why): the build runs
  them and their tests, and names any that fails.
- InvocationMode.DBT_RUNNER: dbt runs inside the task's process (no `dbt` executable path, which
  must not be set together with DBT_RUNNER).
- The profile is dbt/profiles.yml, which reads only DBT_* variables. They are filled right before
  each task runs from the platform's one warehouse setting (CRYPTO_DATABASE_URL, or the embedded
  server) by `crypto_analytics.dbt_runner.dbt_env`, so no connection details live in Airflow.

`.airflowignore` keeps the parser from treating this module as a DAG file.
"""

from __future__ import annotations

import os
from datetime import timedelta
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
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
    TestIndirectSelection,
)

from crypto_analytics.contract import (
    DBT_AIRFLOW_TARGET,
    DBT_EXECUTION_MODES,
    DBT_INDIRECT_SELECTION,
    DBT_LAYER_EXCLUDES,
    DBT_LS_FILE_NAME,
    DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES,
    SCHEDULED_DBT_VARS,
)

#: The dbt project: $DBT_PROJECT_DIR (as crypto_analytics.dbt_runner reads it), else <repo>/dbt.
DBT_PROJECT_DIR = Path(
    os.environ.get("DBT_PROJECT_DIR") or Path(__file__).resolve().parents[2] / "dbt"
)
BUILD_COMMAND = "make dbt-parse"
EXECUTION_MODE_ENV = "DBT_DAGS_EXECUTION_MODE"
_MODES = {name: ExecutionMode(name) for name in DBT_EXECUTION_MODES}
#: How often a model's sensor asks whether the build has reported its model (seconds).
SENSOR_POKE_SECONDS = 2
#: A watcher task's retry delay. Airflow 3.3 can fail a deferred sensor whose trigger fires at
#: once (the build had already reported its model): the scheduler drains the stale success of
#: the deferral's exit after the resumed try is running, marks it failed, and the resumed try's
#: success is refused ("Task Instance not found"; apache/airflow#72716 and #71580, open). The
#: retry then runs the model's dbt command itself and succeeds; the default minute of delay made
#: such a cycle take 107-121 s instead of ~50 (scripts/bench_orchestration.py --timeline shows
#: the retry as "(try 2)"). A real failure also fails faster: its retries come seconds apart.
SENSOR_RETRY_DELAY = timedelta(seconds=5)


def execution_mode() -> ExecutionMode:
    """WATCHER unless DBT_DAGS_EXECUTION_MODE names another mode; a typo is an error."""
    name = os.environ.get(EXECUTION_MODE_ENV, "watcher").strip().lower()
    if name not in _MODES:
        raise ValueError(
            f"{EXECUTION_MODE_ENV}={name!r} is not a mode; choose one of {', '.join(_MODES)}"
        )
    return _MODES[name]


def layer_ls_file(layer: str, mode: str) -> Path:
    return DBT_PROJECT_DIR / DBT_AIRFLOW_TARGET / DBT_LS_FILE_NAME.format(layer=layer, mode=mode)


def point_dbt_at_warehouse(context: Any) -> None:
    """on_execute_callback: set the DBT_* variables profiles.yml reads, for this task's process.

    Cosmos passes the process environment to dbt, so dbt connects to the same warehouse as the
    ingestion tasks, whether that is CRYPTO_DATABASE_URL or the embedded server's Unix socket.
    """
    from crypto_analytics.dbt_runner import dbt_env

    os.environ.update(dbt_env())


def dbt_layer(group_id: str, layer: str, **task_group_kwargs: Any) -> DbtTaskGroup:
    """A task group running the dbt models under models/<layer> and their tests, with a task (a
    sensor in watcher mode) for every model and for every model's tests."""
    mode = execution_mode()
    ls_file = layer_ls_file(layer, mode.value)
    if not ls_file.is_file():
        raise FileNotFoundError(
            f"{ls_file} is missing: build what the dbt DAGs are rendered from with "
            f"`{BUILD_COMMAND}` (`make up` does this)"
        )
    excluded = [
        a for t in DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES for a in ("--exclude-resource-type", t)
    ]
    operator_args: dict[str, Any] = {"on_execute_callback": point_dbt_at_warehouse}
    if mode is ExecutionMode.WATCHER:
        operator_args["poke_interval"] = SENSOR_POKE_SECONDS
        operator_args["retry_delay"] = SENSOR_RETRY_DELAY
    # The build only: `dbt run` (a model task's retry, the per-model mode) rejects the flag, and a
    # per-model test task runs its model's unit tests with its data tests.
    build_args = {"indirect_selection": DBT_INDIRECT_SELECTION, "dbt_cmd_flags": excluded}
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
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
            execution_mode=mode,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # Test tasks get it from here; the watcher's build from setup_operator_args (Cosmos
            # gives it nothing else, and dbt's default, eager, would run gold's relationship
            # tests in silver's build, before gold exists).
            test_indirect_selection=TestIndirectSelection(DBT_INDIRECT_SELECTION),
            setup_operator_args=build_args,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS_FILE,
            dbt_ls_path=ls_file,
            # The watcher's one build selects with this; the ls file already holds its nodes.
            select=[f"path:models/{layer}"],
            # gold's views over Python-written results are built by the DAGs that write them;
            # tests of SQL invariants run in CI and builds by hand (contract says why)
            exclude=list(DBT_LAYER_EXCLUDES[layer]),
            test_behavior=TestBehavior.AFTER_EACH,
            # A test reading several models (a relationships test): in watcher mode it counts
            # towards each of their test tasks, as the build reports it; per model it needs a
            # task of its own, after all of them.
            should_detach_multiple_parents_tests=mode is ExecutionMode.LOCAL,
            # One Asset per layer is the scheduling contract; Cosmos's per-model Assets would name
            # the physical host and database, so they would differ between deployments.
            emit_datasets=False,
        ),
        operator_args=operator_args,
        **task_group_kwargs,
    )
