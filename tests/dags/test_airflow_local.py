"""The local Airflow launcher's decisions, without starting Airflow (that is checked by hand with
`make up`; it takes half a minute and a port)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from crypto_analytics import airflow_local
from crypto_analytics.airflow_local import Layout


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(home=tmp_path / "airflow", project_root=tmp_path / "repo")


def test_sqlalchemy_url_keeps_the_unix_socket_and_the_password():
    assert (
        airflow_local.sqlalchemy_url("postgresql://postgres:@/airflow?host=/work/main/.data/pg")
        == "postgresql+psycopg2://postgres:@/airflow?host=/work/main/.data/pg"
    )
    assert (
        airflow_local.sqlalchemy_url("postgresql://app:s%40cret@db.internal:6543/airflow")
        == "postgresql+psycopg2://app:s%40cret@db.internal:6543/airflow"
    )


def test_component_env_is_sized_for_two_cores_and_points_everything_at_our_state(
    layout, monkeypatch
):
    for key in [k for k in os.environ if k.startswith("AIRFLOW__")]:  # conftest's test settings
        monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere/else")  # a shell's own Airflow: ignored
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "3")  # an explicit override: kept
    monkeypatch.setenv("PATH", "/usr/bin")

    env = airflow_local.component_env(
        layout,
        "postgresql://postgres:@/airflow?host=/tmp/pg",
        "postgresql://postgres:@/postgres?host=/tmp/pg",
    )

    assert env["AIRFLOW_HOME"] == str(layout.home)
    assert env["AIRFLOW__CORE__PARALLELISM"] == "3"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__API__WORKERS"] == "1"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(layout.project_root / "airflow" / "dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://postgres:@/airflow?host=/tmp/pg"
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:8080/execution/"
    assert env["CRYPTO_DATABASE_URL"] == "postgresql://postgres:@/postgres?host=/tmp/pg"
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"


def test_secrets_are_generated_once_and_stay_stable(layout):
    first = airflow_local.component_env(layout, "postgresql://h/airflow", "postgresql://h/w")
    second = airflow_local.component_env(layout, "postgresql://h/airflow", "postgresql://h/w")

    for key in ("AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert len(first[key]) >= 40
        assert first[key] == second[key]
    assert first["AIRFLOW__API__SECRET_KEY"] != first["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert layout.secrets_file.stat().st_mode & 0o777 == 0o600


def test_admin_password_comes_from_the_environment_else_is_generated_once(layout, monkeypatch):
    monkeypatch.delenv("AIRFLOW_ADMIN_PASSWORD", raising=False)
    generated = airflow_local.admin_password(layout)
    assert airflow_local.admin_password(layout) == generated
    assert json.loads(layout.password_file.read_text()) == {"admin": generated}

    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "correct horse")
    assert airflow_local.admin_password(layout) == "correct horse"
    # The simple auth manager reads this file, so the UI login changes with it.
    assert json.loads(layout.password_file.read_text()) == {"admin": "correct horse"}


def test_health_needs_every_component_healthy():
    healthy = {"status": "healthy"}
    document = {
        "metadatabase": healthy,
        "scheduler": healthy,
        "triggerer": healthy,
        "dag_processor": healthy,
    }
    assert airflow_local._all_healthy(document)
    assert not airflow_local._all_healthy({**document, "triggerer": {"status": "unhealthy"}})
    assert not airflow_local._all_healthy({**document, "dag_processor": None})
    assert not airflow_local._all_healthy(None)


def test_a_pid_file_naming_another_program_is_not_taken_for_airflow(layout):
    layout.run_dir.mkdir(parents=True)
    layout.pid_file("scheduler").write_text(f"{os.getpid()}\n")  # pytest, not airflow scheduler
    assert airflow_local.running_pid(layout, "scheduler") is None
    layout.pid_file("triggerer").write_text("not a pid\n")
    assert airflow_local.running_pid(layout, "triggerer") is None
    assert airflow_local.running_pid(layout, "api-server") is None  # no pid file at all


def test_down_with_nothing_running_is_harmless(settings):
    assert airflow_local.down(settings) == "nothing was running"


def test_manifest_is_stale_when_missing_or_older_than_a_model(tmp_path, monkeypatch, settings):
    project = tmp_path / "dbt"
    (project / "models" / "silver").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: x\n")
    model = project / "models" / "silver" / "m.sql"
    model.write_text("select 1\n")
    monkeypatch.setenv("DBT_PROJECT_DIR", str(project))

    assert airflow_local.dbt_manifest_is_stale(settings)
    manifest = project / "target" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    past = time.time() - 60
    os.utime(model, (past, past))
    os.utime(project / "dbt_project.yml", (past, past))
    assert not airflow_local.dbt_manifest_is_stale(settings)
    model.write_text("select 2\n")  # edited after the manifest was built
    assert airflow_local.dbt_manifest_is_stale(settings)
