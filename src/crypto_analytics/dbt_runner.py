"""Run the dbt project (silver and gold) against the platform's warehouse.

Why in-process through `dbtRunner` instead of a `dbt` subprocess: Airflow tasks, the CLI and the
tests all call the same function, failures come back as Python exceptions naming the failing
nodes, and the connection is derived from the one warehouse setting (`CRYPTO_DATABASE_URL`, or the
embedded server's Unix socket) instead of a second, hand-kept profile.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.contract import (
    DBT_RESULT_VIEWS,
    DBT_RESULT_VIEWS_INDIRECT_SELECTION,
    DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES,
    DBT_SCHEDULED_EXCLUDES,
    SCHEDULED_DBT_VARS,
)
from crypto_analytics.errors import ConfigError, DataQualityError, TransformError
from crypto_analytics.warehouse import connection_params, database_url

log = logging.getLogger(__name__)

#: Environment variable that points at another dbt project folder (dbt itself reads it too).
PROJECT_DIR_ENV = "DBT_PROJECT_DIR"
DEFAULT_THREADS = "2"

# dbtRunner reads the profile's env_var()s from os.environ, which is process-wide: serialise.
_ENV_LOCK = threading.Lock()

# Flags we add unless the caller passed them (dbt refuses duplicated flags).
_DIR_FLAGS = ("--project-dir", "--profiles-dir")
# Commands that accept --project-dir/--profiles-dir.
_PROJECT_COMMANDS = {
    "build", "clean", "compile", "debug", "deps", "docs", "list", "ls", "parse", "run",
    "run-operation", "seed", "show", "snapshot", "source", "test", "retry", "clone",
}  # fmt: skip


def project_dir(settings: Settings | None = None) -> Path:
    """The dbt project folder: $DBT_PROJECT_DIR, else `dbt/` beside config/ in the checkout."""
    explicit = os.environ.get(PROJECT_DIR_ENV)
    path = Path(explicit) if explicit else (settings or get_settings()).project_root / "dbt"
    if not (path / "dbt_project.yml").is_file():
        raise ConfigError(
            f"no dbt project at {path} (dbt_project.yml missing); set {PROJECT_DIR_ENV}"
        )
    return path


def dbt_env(url: str | None = None, settings: Settings | None = None) -> dict[str, str]:
    """The DBT_* variables profiles.yml reads, for the warehouse the platform is configured with.

    Works for TCP URLs and for the embedded server (host is then its Unix-socket folder).
    DBT_THREADS keeps a value already in the environment, else 2 (the machines have 2 cores).
    """
    params = connection_params(url or database_url(settings))
    return {
        "DBT_HOST": params["host"],
        "DBT_PORT": params["port"],
        "DBT_USER": params["user"],
        "DBT_PASSWORD": params["password"],
        "DBT_DBNAME": params["dbname"],
        "DBT_THREADS": os.environ.get("DBT_THREADS", DEFAULT_THREADS),
    }


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the duration of one dbt invocation, then restore the previous ones."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _with_project_flags(args: list[str], folder: Path) -> list[str]:
    if not args or args[0] not in _PROJECT_COMMANDS:
        return list(args)
    extra: list[str] = []
    for flag in _DIR_FLAGS:
        if not any(a == flag or a.startswith(flag + "=") for a in args):
            extra += [flag, str(folder)]
    return [*args, *extra]


def vars_args(values: Mapping[str, Any]) -> list[str]:
    """`--vars` for a dbt command (JSON is valid YAML). dbt re-parses the whole project when the
    vars differ from its last parse's, so a parse, a full build and the incremental builds after
    it should all pass the same ones."""
    return ["--vars", json.dumps(dict(values), sort_keys=True)]


def _failures(result: Any) -> list[tuple[bool, str]]:
    """(is a data test, '<status> <node>: <message>') for every node that errored or failed."""
    failed: list[tuple[bool, str]] = []
    outcome = getattr(result, "result", None)
    for node_result in getattr(outcome, "results", None) or []:
        status = str(getattr(node_result, "status", "")).lower()
        if status in {"error", "fail", "runtimeerr"}:
            node = getattr(node_result, "node", None)
            name = getattr(node, "unique_id", None) or getattr(node_result, "unique_id", "?")
            message = (getattr(node_result, "message", "") or "").strip()
            is_data_test = status == "fail" and str(getattr(node, "resource_type", "")) == "test"
            failed.append((is_data_test, f"{status} {name}: {message}"))
    return failed


def run_dbt(args: list[str], url: str | None = None, settings: Settings | None = None) -> Any:
    """Run one dbt command (e.g. ["build", "--select", "silver+"]) and return dbt's result.

    Raises DataQualityError when only data tests failed (the data is wrong, the code ran), and
    TransformError for anything else that did not succeed (a model's SQL, a unit test: the code
    is wrong); both name every failing node.
    """
    from dbt.cli.main import dbtRunner  # heavy import: only when dbt actually runs

    folder = project_dir(settings)
    full_args = _with_project_flags(args, folder)
    env = dbt_env(url, settings)
    log.info("dbt %s (database %s on %s)", " ".join(args), env["DBT_DBNAME"], env["DBT_HOST"])
    with _ENV_LOCK, _environment(env):
        result = dbtRunner().invoke(full_args)
    if result.success:
        return result
    failures = _failures(result)
    if result.exception is not None:
        raise TransformError(f"dbt {' '.join(args)} could not run: {result.exception}")
    lines = [line for _, line in failures]
    if failures and all(is_data_test for is_data_test, _ in failures):
        raise DataQualityError(
            f"dbt {' '.join(args)}: {len(lines)} data test(s) failed:\n" + "\n".join(lines)
        )
    detail = "\n".join(lines) or "no node reported a failure; see dbt's log"
    raise TransformError(f"dbt {' '.join(args)} failed:\n{detail}")


@dataclass(frozen=True)
class ResultViewsBuild:
    """What `build_result_views` did: the area, its views built and data tests passed."""

    area: str
    views: int
    tests: int
    seconds: float


def result_views_selection(area: str) -> list[str]:
    """The dbt selection of one area's gold views over Python-written results
    (crypto_analytics.contract.DBT_RESULT_VIEWS): every view of the area and every test of them,
    their relationships to silver.token_universe included (eager: silver is built by then)."""
    if area not in DBT_RESULT_VIEWS:
        raise ConfigError(
            f"unknown result views {area!r}; choose one of {', '.join(DBT_RESULT_VIEWS)}"
        )
    excluded = [
        a for t in DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES for a in ("--exclude-resource-type", t)
    ]
    return [
        "--select",
        DBT_RESULT_VIEWS[area],
        "--exclude",
        *DBT_SCHEDULED_EXCLUDES,
        "--indirect-selection",
        DBT_RESULT_VIEWS_INDIRECT_SELECTION,
        *excluded,
    ]


def build_result_views(area: str, settings: Settings | None = None) -> ResultViewsBuild:
    """Build and test the gold views over one area's results, right after its DAG wrote them.

    Why here and not in the 15-minute gold build: no gold mart reads these views, and their data
    tests only mean something when their data changed. The build runs in the scheduled mode
    (SCHEDULED_DBT_VARS) with a dbt target folder of its own under the data dir, so it never
    shares dbt's partial-parse state with another build running at the same time (the alert and
    forecasting DAGs both follow gold). A failing test raises DataQualityError naming it.
    """
    settings = settings or get_settings()
    work = settings.data_path / "dbt" / f"views_{area}"
    args = [
        "build",
        *result_views_selection(area),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        *vars_args(SCHEDULED_DBT_VARS),
    ]
    started = time.perf_counter()
    result = run_dbt(args, settings=settings)
    nodes = getattr(result.result, "results", None) or []
    kinds = [str(getattr(n.node, "resource_type", "")) for n in nodes]
    built = ResultViewsBuild(
        area=area,
        views=sum(k == "model" for k in kinds),
        tests=sum(k == "test" for k in kinds),
        seconds=round(time.perf_counter() - started, 2),
    )
    log.info("%s views: %d built, %d tests passed in %.1f s", area, built.views, built.tests,
             built.seconds)  # fmt: skip
    return built
