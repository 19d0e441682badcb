"""What the silver and gold DAGs are rendered from: one `dbt ls` file per dbt layer.

Why `dbt ls` files (Cosmos `LoadMode.DBT_LS_FILE`) rather than the manifest: a layer's file holds
exactly the nodes dbt itself selects for `--select path:models/<layer>` with *buildable* indirect
selection, the same selection the layer's scheduled `dbt build` makes. A test defined in gold that
reads a silver model (gold's relationships to `token_universe`) is then a gold node only, instead
of being attached to silver by Cosmos and pruned by hand afterwards. Parsing a DAG reads one small
JSON file: no dbt import, no subprocess, no connection.

Why a folder of their own (`dbt/<DBT_AIRFLOW_TARGET>`): `make docs`, the CLI and the tests all run
dbt with the default `dbt/target`, and none of them may change what the scheduler renders.
Only `make dbt-parse` (and `make up` when a dbt file is newer) writes here.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from pathlib import Path

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.contract import (
    DBT_AIRFLOW_TARGET,
    DBT_INDIRECT_SELECTION,
    DBT_LAYERS,
    DBT_LS_FILE_NAME,
    DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES,
    SCHEDULED_DBT_VARS,
)
from crypto_analytics.errors import TransformError

log = logging.getLogger(__name__)

#: dbt parse and ls never connect, but the profile still needs values to render.
_OFFLINE_URL = "postgresql://dbt-ls@localhost:5432/offline"
#: Files whose change can change a layer's nodes.
_DBT_INPUT_FOLDERS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")
_DBT_INPUT_FILES = ("dbt_project.yml", "selectors.yml", "profiles.yml", "packages.yml")


def target_dir(settings: Settings | None = None) -> Path:
    from crypto_analytics.dbt_runner import project_dir

    return project_dir(settings) / DBT_AIRFLOW_TARGET


def layer_ls_path(layer: str, settings: Settings | None = None) -> Path:
    """The `dbt ls` file the DAG of `layer` is rendered from."""
    if layer not in DBT_LAYERS:
        raise ValueError(f"unknown dbt layer {layer!r}; the layers are {', '.join(DBT_LAYERS)}")
    return target_dir(settings) / DBT_LS_FILE_NAME.format(layer=layer)


def layer_selection(layer: str) -> list[str]:
    """The node selection of a layer's scheduled build (crypto_analytics.contract says why)."""
    excluded = [
        a for t in DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES for a in ("--exclude-resource-type", t)
    ]
    return [
        "--select",
        f"path:models/{layer}",
        "--indirect-selection",
        DBT_INDIRECT_SELECTION,
        *excluded,
    ]


def artifacts_are_stale(settings: Settings | None = None) -> bool:
    """True when a layer's file is missing or older than any file of the dbt project."""
    from crypto_analytics.dbt_runner import project_dir

    files = [layer_ls_path(layer, settings) for layer in DBT_LAYERS]
    if not all(f.is_file() for f in files):
        return True
    built = min(f.stat().st_mtime for f in files)
    folder = project_dir(settings)
    inputs = [folder / name for name in _DBT_INPUT_FILES]
    for sub in _DBT_INPUT_FOLDERS:
        if (folder / sub).is_dir():
            inputs.extend(p for p in (folder / sub).rglob("*") if p.is_file())
    return any(p.is_file() and p.stat().st_mtime > built for p in inputs)


def build_airflow_artifacts(settings: Settings | None = None, url: str | None = None) -> list[Path]:
    """Write each layer's `dbt ls` file (atomically: a DAG parse never reads half a file)."""
    from crypto_analytics.dbt_runner import run_dbt, vars_args

    settings = settings or get_settings()
    folder = target_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    connection = url or os.environ.get("CRYPTO_DATABASE_URL") or _OFFLINE_URL
    written = []
    for layer in DBT_LAYERS:
        # The scheduled builds' vars: dbt re-parses the whole project when they differ.
        args = [
            "ls",
            *layer_selection(layer),
            "--output",
            "json",
            "--target-path",
            str(folder),
            *vars_args(SCHEDULED_DBT_VARS),
        ]
        with contextlib.redirect_stdout(io.StringIO()):  # dbt ls prints every node
            result = run_dbt(args, url=connection, settings=settings)
        lines = [line for line in result.result or [] if line.strip()]
        if not any(json.loads(line).get("resource_type") == "model" for line in lines):
            raise TransformError(f"dbt ls found no model under models/{layer}")
        path = layer_ls_path(layer, settings)
        partial = path.with_suffix(".partial")
        partial.write_text("\n".join(lines) + "\n")
        partial.replace(path)
        log.info("%s: %d dbt nodes", path, len(lines))
        written.append(path)
    return written
