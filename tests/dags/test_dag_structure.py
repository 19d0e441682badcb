"""Every DAG in the folder (today's and any added later) has a graph the Airflow UI can draw, and
no DAG file reaches into Airflow's or Cosmos' private API to get there.

The silver DAG's Graph view was once blank: its DAG file removed Cosmos test tasks through
`TaskGroup._remove` and `task_dict`, and the serialized task groups kept edges to the removed
tasks. The UI draws from the serialized DAG (`/ui/structure/structure_data`), so this checks
exactly that: serialize, deserialize, and compute nodes and edges as the API server does.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

#: Attribute names that are public although they start with an underscore.
_DUNDER = ("__",)


def _structure(dag) -> tuple[set[str], list[tuple[str, str]]]:
    """Node ids and edges of the Graph view, computed as the API server computes them."""
    from airflow.api_fastapi.core_api.services.ui.task_group import task_group_to_dict
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.dag_edges import dag_edges

    served = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    group_dict = served.task_group.get_task_group_dict()
    nodes = [
        task_group_to_dict(child, group_dict=group_dict)
        for child in served.task_group.topological_sort(group_dict=group_dict)
    ]
    ids: set[str] = set()

    def walk(node: dict) -> None:
        ids.add(node["id"])
        for child in node.get("children") or []:
            walk(child)

    for node in nodes:
        walk(node)
    edges = [(e["source_id"], e["target_id"]) for e in dag_edges(served)]
    return ids, edges


def _group_links(dag) -> list[str]:
    """Links the serialized task groups keep (what the old pruning left behind)."""
    from airflow.serialization.serialized_objects import DagSerialization

    known = set(dag.task_dict) | set(dag.task_group.get_task_group_dict())
    problems = []

    def walk(group: dict) -> None:
        for key in (
            "upstream_task_ids",
            "downstream_task_ids",
            "upstream_group_ids",
            "downstream_group_ids",
        ):
            for other in group.get(key) or []:
                if other not in known:
                    problems.append(f"group {group.get('_group_id')} {key} -> {other}")
        for kind, child in (group.get("children") or {}).values():
            if kind == "taskgroup":
                walk(child)

    walk(DagSerialization.to_dict(dag)["dag"]["task_group"])
    return problems


def _dangling(dag) -> list[str]:
    ids, edges = _structure(dag)
    problems = [f"edge {s} -> {t}" for s, t in edges if s not in ids or t not in ids]
    problems += _group_links(dag)
    for task in dag.tasks:
        for other in task.upstream_task_ids | task.downstream_task_ids:
            if other not in dag.task_dict:
                problems.append(f"{task.task_id} links to missing task {other}")
    return problems


def test_every_dag_graph_has_nodes_for_all_its_edges(dag_bag):
    assert dag_bag.dags, "no DAG parsed"
    problems = {dag_id: _dangling(dag) for dag_id, dag in dag_bag.dags.items()}
    assert {k: v for k, v in problems.items() if v} == {}
    for dag_id, dag in dag_bag.dags.items():
        ids, _ = _structure(dag)
        assert set(dag.task_dict) <= ids, f"{dag_id}: tasks missing from the graph"


def test_the_graph_check_catches_a_task_removed_behind_airflow_s_back():
    """The check itself: a group whose task was removed the way the old DAG file did it."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, TaskGroup

    with DAG("surgery", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
        with TaskGroup("model") as model:
            run = EmptyOperator(task_id="run")
            run >> EmptyOperator(task_id="test")
        removed = EmptyOperator(task_id="removed")
        model >> removed  # Cosmos links a model's group to the tests reading the model
    assert _dangling(dag) == []

    for task in removed.upstream_list:  # what the old DAG file did, private API included
        task.downstream_task_ids.discard(removed.task_id)
    removed.task_group._remove(removed)
    del dag.task_dict[removed.task_id]

    assert _dangling(dag), "a group edge to a removed task went unnoticed"


def _private_uses(path: Path) -> list[str]:
    """Imports of private modules and uses of private attributes (`x._name`), plus writes to
    `task_dict`, in one DAG file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if any(p.startswith("_") and not p.startswith(_DUNDER) for p in parts):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith(_DUNDER):
                    found.append(f"line {node.lineno}: import of private {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(p.startswith("_") for p in alias.name.split(".")):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute):
            private = node.attr.startswith("_") and not node.attr.startswith(_DUNDER)
            if private or node.attr == "task_dict":
                found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_dag_files_use_no_private_api(dags_folder):
    files = sorted(dags_folder.glob("*.py"))
    assert any(f.name == "crypto_dbt.py" for f in files)
    uses = {f.name: _private_uses(f) for f in files}
    assert {name: found for name, found in uses.items() if found} == {}


def test_the_private_api_check_finds_the_old_surgery(tmp_path):
    old = tmp_path / "old_dag.py"
    old.write_text(
        "from airflow.sdk.definitions._internal.abstractoperator import DEFAULT_QUEUE\n"
        "def prune(group, task):\n"
        "    task.task_group._remove(task)\n"
        "    del task.dag.task_dict[task.task_id]\n"
    )
    found = _private_uses(old)
    assert len(found) == 3, found
