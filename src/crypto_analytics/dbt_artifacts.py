"""What the silver and gold DAGs are rendered from: `dbt ls` files, per dbt layer.

Why `dbt ls` files (Cosmos `LoadMode.DBT_LS_FILE`) rather than the manifest: a layer's file holds
the nodes dbt itself selects for `--select path:models/<layer>` (less
`contract.DBT_LAYER_EXCLUDES`: gold's views over Python-written results, built by the DAGs that
write them, and the tests of SQL invariants) with *buildable* indirect selection, the same
selection the layer's scheduled `dbt build` makes. A test defined in gold that
reads a silver model (gold's relationships to `token_universe`) is then a gold node only, instead
of being attached to silver by Cosmos and pruned by hand afterwards. Parsing a DAG reads one small
JSON file: no dbt import, no subprocess, no connection. Each layer has a file per Cosmos execution
mode: the watcher's leaves out the views (`rendered_nodes`), which its one build runs anyway; the
per-model mode runs only what it renders, so its file holds every node.

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
from typing import Any

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.contract import (
    DBT_AIRFLOW_TARGET,
    DBT_EXECUTION_MODES,
    DBT_INDIRECT_SELECTION,
    DBT_LAYER_EXCLUDES,
    DBT_LAYERS,
    DBT_LS_FILE_NAME,
    DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES,
    DBT_UNRENDERED_MATERIALIZATIONS,
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


def layer_ls_path(layer: str, settings: Settings | None = None, mode: str = "watcher") -> Path:
    """The `dbt ls` file the DAG of `layer` is rendered from in Cosmos execution `mode`."""
    if layer not in DBT_LAYERS:
        raise ValueError(f"unknown dbt layer {layer!r}; the layers are {', '.join(DBT_LAYERS)}")
    if mode not in DBT_EXECUTION_MODES:
        raise ValueError(f"unknown mode {mode!r}; the modes are {', '.join(DBT_EXECUTION_MODES)}")
    return target_dir(settings) / DBT_LS_FILE_NAME.format(layer=layer, mode=mode)


def layer_selection(layer: str) -> list[str]:
    """The node selection of a layer's scheduled build (crypto_analytics.contract says why)."""
    excluded = [
        a for t in DBT_SCHEDULED_EXCLUDED_RESOURCE_TYPES for a in ("--exclude-resource-type", t)
    ]
    return [
        "--select",
        f"path:models/{layer}",
        "--exclude",
        *DBT_LAYER_EXCLUDES[layer],
        "--indirect-selection",
        DBT_INDIRECT_SELECTION,
        *excluded,
    ]


def rendered_nodes(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nodes a layer's DAG shows a task for: models that store data, and the tests of at
    least one of them (contract.DBT_UNRENDERED_MATERIALIZATIONS says why views get none). The
    layer's build still selects every node of the layer."""
    hidden = {
        node["unique_id"]
        for node in nodes
        if node.get("resource_type") == "model"
        and (node.get("config") or {}).get("materialized") in DBT_UNRENDERED_MATERIALIZATIONS
    }
    shown_models = {
        node["unique_id"] for node in nodes if node.get("resource_type") == "model"
    } - hidden
    kept = []
    for node in nodes:
        if node["unique_id"] in hidden:
            continue
        parents = set((node.get("depends_on") or {}).get("nodes") or [])
        if node.get("resource_type") == "test" and not parents & shown_models:
            continue
        kept.append(node)
    return kept


def artifacts_are_stale(settings: Settings | None = None) -> bool:
    """True when a layer's file is missing or older than any file of the dbt project."""
    from crypto_analytics.dbt_runner import project_dir

    files = [
        layer_ls_path(layer, settings, mode) for layer in DBT_LAYERS for mode in DBT_EXECUTION_MODES
    ]
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
        nodes = [json.loads(line) for line in result.result or [] if line.strip()]
        if not any(node.get("resource_type") == "model" for node in nodes):
            raise TransformError(f"dbt ls found no model under models/{layer}")
        for mode, shown in (("local", nodes), ("watcher", rendered_nodes(nodes))):
            path = layer_ls_path(layer, settings, mode)
            partial = path.with_suffix(".partial")
            partial.write_text("".join(json.dumps(node, sort_keys=True) + "\n" for node in shown))
            partial.replace(path)
            log.info("%s: %d dbt nodes", path, len(shown))
            written.append(path)
    return written
