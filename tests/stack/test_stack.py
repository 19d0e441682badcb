"""scripts/stack.py's decisions, without starting anything (tests/stack/test_make_up.py starts
the real stack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto_analytics.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_procfile_runs_airflow_and_dbt_docs_each_with_a_health_check(stack):
    processes = {p.name: p for p in stack.read_procfile()}
    airflow = {
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    }
    assert airflow | {"dbt-docs", "celery-worker-1", "celery-worker-2"} <= set(processes)
    for name in airflow:
        assert processes[name].health_url.endswith("/api/v2/monitor/health"), name
    keys = {processes[n].health_key for n in airflow}
    assert keys == {"metadatabase", "scheduler", "dag_processor", "triggerer"}
    # honcho runs the command; the `# health:` annotation is a shell comment it passes along
    assert processes["airflow-scheduler"].command.startswith("airflow scheduler")
    assert processes["dbt-docs"].health_url == "http://127.0.0.1:8081/"
    assert "target_docs" in processes["dbt-docs"].command


def test_a_new_service_is_one_line(stack, tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# comment\nweb: python -m http.server $PORT  # health: http://127.0.0.1:$PORT/\n"
        "worker: python worker.py\n"
    )
    web, worker = stack.read_procfile(procfile)
    assert (web.name, web.health_url, web.health_key) == ("web", "http://127.0.0.1:$PORT/", None)
    assert (worker.name, worker.health_url) == ("worker", None)
    assert stack.check_health(worker, {}) is None  # alive is healthy without a check


def test_profiles_and_only(stack):
    processes = stack.read_procfile()
    local = {p.name for p in stack.select(processes, "local")}
    celery = {p.name for p in stack.select(processes, "celery")}
    assert not [n for n in local if n.startswith("celery-")]
    assert celery - local == {"celery-worker-1", "celery-worker-2"}
    only = {p.name for p in stack.select(processes, "local", ["airflow-*"])}
    assert only == {
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    }
    with pytest.raises(ConfigError, match="choose one of local, celery"):
        stack.select(processes, "kubernetes")
    with pytest.raises(ConfigError, match="no process matches mlflw"):
        stack.select(processes, "local", ["mlflw"])


def test_environment_is_sized_for_two_cores_and_points_at_this_checkout(
    stack, tmp_path, monkeypatch
):
    for key in [k for k in os.environ if k.startswith("AIRFLOW__")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere/else")  # a shell's own Airflow: ignored
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "3")  # an explicit override: kept
    lay = stack.Layout(tmp_path / "data")
    env = stack.stack_env(
        lay, "local", "postgresql://postgres:@/w_airflow?host=/tmp/pg",
        "postgresql://postgres:@/w?host=/tmp/pg", ROOT / "config" / "config.yaml",
    )  # fmt: skip
    assert env["AIRFLOW_HOME"] == str(lay.airflow_home)
    assert env["AIRFLOW__CORE__PARALLELISM"] == "3"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://postgres:@/w_airflow?host=/tmp/pg"
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:8080/execution/"
    assert env["CRYPTO_DATABASE_URL"] == "postgresql://postgres:@/w?host=/tmp/pg"
    assert env["AIRFLOW__COSMOS__CACHE_DIR"] == str(lay.airflow_home / "cosmos")
    assert env["AIRFLOW__OPENLINEAGE__NAMESPACE"]
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env[stack.MARKER] == str(lay.stack_dir)
    # no variable of the stack's own may look like a platform setting (CRYPTO_* must be one)
    assert not [k for k in env if k.startswith("CRYPTO_") and k not in os.environ
                and k not in ("CRYPTO_DATABASE_URL", "CRYPTO_CONFIG_FILE")]  # fmt: skip
    celery = stack.stack_env(lay, "celery", "postgresql://h/a", "postgresql://h/w", ROOT)
    assert celery["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert celery["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    ports = {celery[k] for k in celery if k.endswith(("LOG_SERVER_PORT", "_LOG_PORT"))}
    assert len(ports) == 4, "the log servers of scheduler, triggerer and two workers collide"


def test_secrets_are_long_enough_generated_once_and_private(stack, tmp_path):
    lay = stack.Layout(tmp_path / "data")
    first = stack.local_secrets(lay)
    assert stack.local_secrets(lay) == first
    # HS512 wants a key of 64 bytes or more (PyJWT's InsecureKeyLengthWarning otherwise)
    assert len(first["jwt_secret"].encode()) >= 64
    assert len(first["api_secret_key"].encode()) >= 64
    assert first["jwt_secret"] != first["api_secret_key"]
    assert lay.secrets_file.stat().st_mode & 0o777 == 0o600


def test_admin_password_from_the_environment_else_generated_once(stack, tmp_path, monkeypatch):
    lay = stack.Layout(tmp_path / "data")
    monkeypatch.delenv("AIRFLOW_ADMIN_PASSWORD", raising=False)
    generated = stack.admin_password(lay)
    assert stack.admin_password(lay) == generated
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "correct horse")
    assert stack.admin_password(lay) == "correct horse"
    assert json.loads(lay.password_file.read_text()) == {"admin": "correct horse"}


def test_metadata_database_is_named_after_the_warehouse(stack):
    assert stack.metadata_database("postgresql://u@h:5432/crypto") == "crypto_airflow"
    assert stack.metadata_database("postgresql://postgres:@/postgres?host=/x") == "postgres_airflow"


def test_health_of_a_json_document(stack):
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = json.dumps(
                {"scheduler": {"status": "healthy"}, "triggerer": {"status": "unhealthy"}}
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/h"
        ok = stack.Process("s", "x", "http://127.0.0.1:$P/h", "scheduler")
        assert stack.check_health(ok, {"P": str(server.server_port)}) is None
        bad = stack.Process("t", "x", url, "triggerer")
        assert stack.check_health(bad, {}) == "triggerer is unhealthy"
        gone = stack.Process("g", "x", "http://127.0.0.1:1/h", None)
        assert "does not answer" in stack.check_health(gone, {})
    finally:
        server.shutdown()


def test_down_finds_and_stops_what_the_stack_started_by_its_marker(stack, tmp_path):
    """A process that carries the stack's marker is stopped even when honcho is gone."""
    lay = stack.Layout(tmp_path / "data")
    env = {**os.environ, stack.MARKER: str(lay.stack_dir), "HONCHO_PROCESS_NAME": "orphan.1"}
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        deadline = time.monotonic() + 10
        while orphan.pid not in stack.stack_pids(lay) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stack.stack_pids(lay) == {orphan.pid: "orphan"}

        class Settings:
            data_path = lay.data_path

        assert "1 process(es) cleaned up" in stack.down(Settings())
        assert orphan.wait(timeout=10) is not None
        assert other.poll() is None, "a process without the marker was touched"
        assert stack.down(Settings()) == "nothing was running"
    finally:
        for process in (orphan, other):
            process.kill()
            process.wait()


def test_the_broker_check_says_what_to_do(stack):
    with pytest.raises(ConfigError, match="start Redis or set AIRFLOW__CELERY__BROKER_URL"):
        stack.check_broker("redis://127.0.0.1:1/0", timeout=1)


def test_status_before_any_start_says_so(stack, tmp_path):
    class Settings:
        data_path = tmp_path / "data"

    text, healthy = stack.status(Settings())
    assert "has not been started" in text and not healthy
