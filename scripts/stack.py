"""The local stack behind `make up`, `make down`, `make status` and `make dbt-parse`.

Why honcho and a Procfile: every long-running service of the platform (Airflow's four components,
the dbt docs site, and the MLflow server, dashboard and stream consumer as they arrive) is ONE
line of the Procfile, the format foreman, Heroku and honcho share, and honcho runs them with one
log whose lines carry the process name. Honcho does not daemonise, report status or check health,
so this script adds only that: it prepares what the processes need (the warehouse migrated,
Airflow's metadata database, stable secrets, what the dbt DAGs are rendered from), starts honcho
in a session of its own, waits for each process's `# health:` check, and stops it all again.
Every process it starts carries STACK_DIR in its environment, so `down` can verify that
nothing is left behind (and clean up what is) without matching processes by name.

State lives under <data_dir>/stack (logs, pid, secrets, 0600) and <data_dir>/airflow
(AIRFLOW_HOME). Any AIRFLOW__* variable already in the environment overrides the defaults here;
AIRFLOW_HOME does not (a shell's AIRFLOW_HOME usually points at another installation).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from crypto_analytics.config import CONFIG_ENV_VAR, Settings, find_config_file, get_settings
from crypto_analytics.contract import ML_TRAINING_POOL
from crypto_analytics.errors import ConfigError, CryptoAnalyticsError

log = logging.getLogger("stack")

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "Procfile"
VENV_BIN = Path(sys.executable).parent
ADMIN_USER = "admin"
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
CELERY_PREFIX = "celery-"
MARKER = "STACK_DIR"
_HEALTH = re.compile(r"#\s*health:\s*(?P<url>\S+)(?:\s+(?P<key>[A-Za-z0-9_.-]+))?\s*$")
_STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Process:
    """One Procfile line: what honcho runs, and how `up`/`status` know it is healthy."""

    name: str
    command: str
    health_url: str | None = None
    health_key: str | None = None


def read_procfile(path: Path = PROCFILE) -> list[Process]:
    """The Procfile's processes, parsed by honcho itself, with their `# health:` annotations."""
    from honcho.environ import PROCFILE_LINE, parse_procfile

    commands = parse_procfile(path.read_text()).processes
    processes = []
    for line in path.read_text().splitlines():
        match = PROCFILE_LINE.match(line)
        if not match or match.group(1) not in commands:
            continue
        health = _HEALTH.search(match.group(2))
        processes.append(
            Process(
                name=match.group(1),
                command=commands[match.group(1)],
                health_url=health.group("url") if health else None,
                health_key=health.group("key") if health else None,
            )
        )
    return processes


def select(processes: list[Process], executor: str, only: Iterable[str] = ()) -> list[Process]:
    """The processes a profile runs: celery-* only with the Celery executor; `only` (names or
    shell patterns, e.g. `airflow-*`) narrows further and must match something."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    chosen = [p for p in processes if executor == "celery" or not p.name.startswith(CELERY_PREFIX)]
    patterns = [p for p in only if p]
    if patterns:
        unknown = [pat for pat in patterns if not any(fnmatch.fnmatch(p.name, pat) for p in chosen)]
        if unknown:
            names = ", ".join(p.name for p in chosen)
            raise ConfigError(f"no process matches {', '.join(unknown)}; the processes are {names}")
        chosen = [p for p in chosen if any(fnmatch.fnmatch(p.name, pat) for pat in patterns)]
    return chosen


@dataclass(frozen=True)
class Layout:
    """Where the stack keeps its state: all of it under the data dir (git-ignored)."""

    data_path: Path

    @property
    def stack_dir(self) -> Path:
        return self.data_path / "stack"

    @property
    def airflow_home(self) -> Path:
        return self.data_path / "airflow"

    @property
    def log_file(self) -> Path:
        return self.stack_dir / "stack.log"

    @property
    def pid_file(self) -> Path:
        return self.stack_dir / "honcho.pid"

    @property
    def state_file(self) -> Path:
        return self.stack_dir / "state.json"

    @property
    def secrets_file(self) -> Path:
        return self.stack_dir / "secrets.json"

    @property
    def password_file(self) -> Path:
        return self.airflow_home / "admin_password.json"


def _read_or_create_json(path: Path, make: dict[str, str]) -> dict[str, str]:
    """Values kept across restarts (secrets must be stable or sessions and task tokens break)."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    if all(key in stored for key in make):
        return stored
    stored = {**make, **stored}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(stored, indent=2) + "\n")
    return stored


def local_secrets(lay: Layout) -> dict[str, str]:
    """Airflow's secrets, generated once. The JWT secret signs with HS512, which wants a key of
    at least 64 bytes (PyJWT warns on every component otherwise): 64 random bytes, URL-safe."""
    from cryptography.fernet import Fernet

    return _read_or_create_json(
        lay.secrets_file,
        {
            "api_secret_key": secrets.token_urlsafe(64),
            "jwt_secret": secrets.token_urlsafe(64),
            "fernet_key": Fernet.generate_key().decode(),
        },
    )


def admin_password(lay: Layout) -> str:
    """AIRFLOW_ADMIN_PASSWORD, else the generated one; written where the auth manager reads it."""
    wanted = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
    if wanted:
        lay.password_file.parent.mkdir(parents=True, exist_ok=True)
        lay.password_file.touch(mode=0o600, exist_ok=True)
        lay.password_file.write_text(json.dumps({ADMIN_USER: wanted}) + "\n")
        return wanted
    return _read_or_create_json(lay.password_file, {ADMIN_USER: secrets.token_urlsafe(12)})[
        ADMIN_USER
    ]


def sqlalchemy_url(libpq_url: str) -> str:
    """The SQLAlchemy spelling of a libpq URL; a Unix-socket host stays in `?host=`."""
    return urlunsplit(("postgresql+psycopg2", *urlsplit(libpq_url)[1:]))


def metadata_database(warehouse_url: str) -> str:
    """Airflow's metadata database: `<warehouse database>_airflow` on the warehouse's server, so
    two checkouts (or a test) sharing one server never share Airflow's state."""
    from crypto_analytics.warehouse import connection_params

    return f"{connection_params(warehouse_url)['dbname']}_airflow"


def api_port() -> int:
    return int(os.environ.get("AIRFLOW__API__PORT", "8080"))


def stack_env(
    lay: Layout, executor: str, metadata_url: str, warehouse_url: str, config_file: Path
) -> dict[str, str]:
    """The environment every process (and so every Airflow task) runs with."""
    keys = local_secrets(lay)
    port = api_port()
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[executor],
        # Sized for 2 cores: Airflow's default of 32 would fork ~40 processes. Four task slots:
        # the bronze fetches may hold two at most (contract.MAX_ACTIVE_FETCHES), a dbt layer's
        # one build holds one, and its model sensors wait in the triggerer, not in a slot.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "60",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(metadata_url),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(lay.password_file),
        # Cosmos reports usage to Scarf from every DAG run unless told not to; its cache (dbt
        # partial-parse files) belongs to this checkout, not to the machine's temp folder.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(lay.airflow_home / "cosmos"),
        # Cosmos reads the OpenLineage namespace and warns on every component when it is unset.
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "crypto_analytics",
        # The Celery profile: Redis as the broker, results in the metadata database.
        "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
        "STACK_WORKER_CONCURRENCY": "2",
        # The log servers of the scheduler (LocalExecutor), the triggerer and the two Celery
        # workers: four ports, so two stacks on one machine move them all with the API port.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 713),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 714),
        "STACK_WORKER_1_LOG_PORT": str(port + 715),
        "STACK_WORKER_2_LOG_PORT": str(port + 716),
    }
    env = dict(os.environ)
    for key, value in defaults.items():
        env.setdefault(key, value)
    env["AIRFLOW_HOME"] = str(lay.airflow_home)
    # Tasks reach the same warehouse and config whatever directory a worker starts in.
    env["CRYPTO_DATABASE_URL"] = warehouse_url
    env[CONFIG_ENV_VAR] = str(config_file)
    # Airflow spawns `airflow ...` subprocesses by name: the venv's bin must come first.
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env[MARKER] = str(lay.stack_dir)
    return env


def _run_logged(command: list[str], env: dict[str, str], log_path: Path, what: str) -> None:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    log_path.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise ConfigError(f"{what} failed (log: {log_path}):\n{tail}")


def prepare(settings: Settings, executor: str) -> tuple[Layout, dict[str, str]]:
    """The warehouse migrated, the dbt DAGs' inputs fresh, Airflow's metadata database migrated;
    returns the layout and the environment of the stack's processes."""
    from crypto_analytics.dbt_artifacts import artifacts_are_stale, build_airflow_artifacts
    from crypto_analytics.migrations.runner import init_database
    from crypto_analytics.warehouse import connect, database_url, ensure_database

    lay = Layout(settings.data_path)
    lay.stack_dir.mkdir(parents=True, exist_ok=True)
    warehouse_url = database_url(settings)
    with connect(warehouse_url) as conn:
        init_database(conn, settings)
    metadata_url = ensure_database(warehouse_url, metadata_database(warehouse_url))
    if artifacts_are_stale(settings):
        log.info("building what the dbt DAGs are rendered from (dbt ls per layer)")
        build_airflow_artifacts(settings, warehouse_url)
    env = stack_env(lay, executor, metadata_url, warehouse_url, find_config_file().resolve())
    log.info("migrating the Airflow metadata database")
    _run_logged(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        env,
        lay.stack_dir / "db-migrate.log",
        "`airflow db migrate`",
    )
    # The forecasting training tasks share this pool (contract.ML_TRAINING_POOL), sized by
    # ml.pool_slots for 2 cores; the scheduler would never run a task of a missing pool.
    _run_logged(
        [
            str(VENV_BIN / "airflow"),
            "pools",
            "set",
            ML_TRAINING_POOL,
            str(settings.ml.pool_slots),
            "Forecasting training jobs (ml.pool_slots)",
        ],  # fmt: skip
        env,
        lay.stack_dir / "pools.log",
        "`airflow pools set`",
    )
    if executor == "celery":
        check_broker(env["AIRFLOW__CELERY__BROKER_URL"])
    return lay, env


def check_broker(url: str, timeout: float = 3.0) -> None:
    """The Celery profile needs its broker up: a clear error now, not workers retrying forever."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            answer = conn.recv(64)
    except OSError as exc:
        raise ConfigError(
            f"the Celery broker {host}:{port} does not answer ({exc}); start Redis or set "
            "AIRFLOW__CELERY__BROKER_URL"
        ) from exc
    if not answer.startswith((b"+PONG", b"-NOAUTH")):
        raise ConfigError(f"{host}:{port} is not a Redis server (answered {answer[:20]!r})")


# --- the running Airflow's REST API (the benchmark and the smoke test drive a cycle with it) ------


class AirflowApi:
    """The few calls of Airflow 3's REST API a cycle needs, logged in as the stack's admin."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        token = self._call("POST", "/auth/token", {"username": user, "password": password}, None)
        self._token: str = token["access_token"]

    @classmethod
    def for_stack(cls, settings: Settings) -> AirflowApi:
        lay = Layout(settings.data_path)
        password = json.loads(lay.password_file.read_text())[ADMIN_USER]
        return cls(f"http://127.0.0.1:{api_port()}", ADMIN_USER, password)

    def _call(self, method: str, path: str, body: object | None, token: str | None) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {token}"} if token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise ConfigError(
                f"Airflow API {method} {path}: HTTP {exc.code} {exc.read()[:300]!r}"
            ) from exc
        return json.loads(payload) if payload else None

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        return self._call(method, path, body, self._token)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}?update_mask=is_paused", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.call(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}}
        )
        return str(run["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        found = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=50")
        return list(found["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=1000"
        found = self.call("GET", path)
        return list(found["task_instances"])

    def asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        query = urlencode({"source_dag_id": dag_id, "source_run_id": run_id})
        found = self.call("GET", f"/api/v2/assets/events?{query}")
        return list(found["asset_events"])

    def wait_for_run_id(
        self, dag_id: str, run_id: str, timeout: float, poll: float = 1.0
    ) -> dict[str, Any]:
        """Run `run_id` of `dag_id` once finished; ConfigError when it failed or ran too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
            if run["state"] in ("success", "failed"):
                return self._finished(dag_id, run)
            time.sleep(poll)
        raise ConfigError(f"{dag_id} run {run_id} did not finish in {timeout:.0f} s")

    def triggered_by(self, dag_id: str, run_id: str) -> set[tuple[str, str]]:
        """(dag_id, run_id) of the runs whose Asset events started this run."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/upstreamAssetEvents"
        found = self.call("GET", path)
        return {(e["source_dag_id"], e["source_run_id"]) for e in found["asset_events"]}

    def wait_for_triggered_run(
        self, dag_id: str, upstream: tuple[str, str], timeout: float, poll: float = 1.0
    ) -> dict[str, Any]:
        """The run of `dag_id` that `upstream` (dag_id, run_id)'s Asset event started, finished;
        ConfigError when it failed or did not finish in time."""
        deadline = time.monotonic() + timeout
        seen: dict[str, set[tuple[str, str]]] = {}
        while time.monotonic() < deadline:
            for run in self.runs(dag_id):
                run_id = run["dag_run_id"]
                if run_id not in seen:
                    seen[run_id] = self.triggered_by(dag_id, run_id)
                if upstream in seen[run_id] and run["state"] in ("success", "failed"):
                    return self._finished(dag_id, run)
            time.sleep(poll)
        raise ConfigError(f"no run of {dag_id} started by {upstream} finished in {timeout:.0f} s")

    def _finished(self, dag_id: str, run: dict[str, Any]) -> dict[str, Any]:
        if run["state"] != "success":
            failed = [
                f"{ti['task_id']}[{ti['map_index']}]"
                for ti in self.task_instances(dag_id, run["dag_run_id"])
                if ti["state"] in ("failed", "upstream_failed")
            ]
            raise ConfigError(f"{dag_id} run {run['dag_run_id']} failed: {failed}")
        return run

    def wait_idle(self, dag_ids: Iterable[str], timeout: float, quiet_s: float = 5.0) -> None:
        """Until no run of these DAGs is queued or running (for `quiet_s` in a row)."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            busy = [
                r
                for dag_id in dag_ids
                for r in self.runs(dag_id)
                if r["state"] in ("queued", "running")
            ]
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return
            time.sleep(1.0)
        raise ConfigError(f"runs of {', '.join(dag_ids)} still going after {timeout:.0f} s")

    def wait_for_run(
        self, dag_id: str, started_after: str, timeout: float, poll: float = 1.0
    ) -> dict[str, Any]:
        """The first run of `dag_id` queued after `started_after` (ISO time), once it finished;
        ConfigError when it failed or did not finish in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs(dag_id) if (r.get("queued_at") or "") >= started_after]
            done = [r for r in runs if r["state"] in ("success", "failed")]
            if done:
                return self._finished(dag_id, min(done, key=lambda r: r["queued_at"]))
            time.sleep(poll)
        raise ConfigError(
            f"no run of {dag_id} queued after {started_after} finished in {timeout:.0f} s"
        )


# --- processes -----------------------------------------------------------------------------------


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def stack_pids(lay: Layout) -> dict[int, str]:
    """Every live process started by this checkout's stack: pid -> its honcho process name
    ('' for honcho itself). Found by the marker in its environment, never by its name."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        env = _environ(int(entry.name))
        if env.get(MARKER) == str(lay.stack_dir):
            found[int(entry.name)] = env.get("HONCHO_PROCESS_NAME", "").rsplit(".", 1)[0]
    return found


def honcho_pid(lay: Layout) -> int | None:
    try:
        pid = int(lay.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid in stack_pids(lay) else None


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), text)


def check_health(process: Process, env: dict[str, str], timeout: float = 3.0) -> str | None:
    """None when healthy, else why not. Without a health URL there is nothing to ask."""
    if not process.health_url:
        return None
    url = _expand(process.health_url, env)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
            body = response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return f"{url} does not answer ({getattr(exc, 'reason', exc)})"
    if process.health_key is None:
        return None
    try:
        status = json.loads(body).get(process.health_key, {}).get("status")
    except (json.JSONDecodeError, AttributeError):
        return f"{url} did not answer JSON"
    return None if status == "healthy" else f"{process.health_key} is {status or 'unknown'}"


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def up(settings: Settings, executor: str, only: list[str], wait_s: float) -> str:
    """Start the stack unless it runs, and wait until every process is alive and healthy."""
    lay = Layout(settings.data_path)
    processes = select(read_procfile(), executor, only)
    if honcho_pid(lay) is not None:
        return f"the stack is already running (pid {honcho_pid(lay)}); `make status` shows it"
    if _port_in_use(api_port()) and any(p.name == "airflow-api-server" for p in processes):
        raise ConfigError(
            f"port {api_port()} is taken by another program; stop it or set AIRFLOW__API__PORT"
        )
    lay, env = prepare(settings, executor)
    password = admin_password(lay)
    with lay.log_file.open("ab") as out:
        honcho = subprocess.Popen(
            [
                str(VENV_BIN / "honcho"),
                "--no-colour",
                "-f",
                str(PROCFILE),
                "-d",
                str(ROOT),
                "start",
                *[p.name for p in processes],
            ],  # fmt: skip
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lay.pid_file.write_text(f"{honcho.pid}\n")
    lay.state_file.write_text(
        json.dumps({"executor": executor, "processes": [p.name for p in processes]}) + "\n"
    )
    deadline = time.monotonic() + wait_s
    while True:
        if honcho.poll() is not None:
            raise ConfigError(
                f"the stack stopped during start-up; {lay.log_file}:\n{_tail(lay.log_file)}"
            )
        running = set(stack_pids(lay).values())
        problems = {
            p.name: ("not running" if p.name not in running else check_health(p, env))
            for p in processes
        }
        problems = {name: why for name, why in problems.items() if why}
        if not problems:
            break
        if time.monotonic() > deadline:
            down(settings)
            detail = "; ".join(f"{name}: {why}" for name, why in problems.items())
            raise ConfigError(
                f"the stack was not healthy within {wait_s:.0f} s ({detail}); stopped it. "
                f"Last lines of {lay.log_file}:\n{_tail(lay.log_file)}"
            )
        time.sleep(2)
    port = env["AIRFLOW__API__PORT"]
    return (
        f"up ({EXECUTORS[executor]}): {', '.join(p.name for p in processes)}\n"
        f"  Airflow: http://localhost:{port}  login {ADMIN_USER} / {password}\n"
        f"  (password from AIRFLOW_ADMIN_PASSWORD, else kept in {lay.password_file})\n"
        f"  logs: {lay.log_file}; `make status`; stop with `make down`\n"
        "  DAGs start paused: unpause bronze_ingestion, silver_transformation and "
        "gold_aggregation in the UI or with `airflow dags unpause <dag_id>`"
    )


def _wait_gone(pids: Iterable[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    left = set(pids)
    while left and time.monotonic() < deadline:
        left = {pid for pid in left if Path(f"/proc/{pid}").exists() and _alive(pid)}
        if left:
            time.sleep(0.3)
    return left


def _alive(pid: int) -> bool:
    """Running and not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def down(settings: Settings) -> str:
    """Stop honcho (it stops its processes), then anything of this stack still alive."""
    lay = Layout(settings.data_path)
    pid = honcho_pid(lay)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        if _wait_gone([pid], _STOP_TIMEOUT_S):
            # honcho waits for the output of its processes' children too (a task process in a
            # session of its own keeps the pipe open): stopping those ends honcho as well.
            log.info(
                "honcho still waits after %.0f s; stopping what is left directly", _STOP_TIMEOUT_S
            )
    left = [p for p in stack_pids(lay) if _alive(p)]
    for leftover in left:
        _signal(leftover, signal.SIGTERM)
    for leftover in _wait_gone(left, 10.0):
        log.warning("killing pid %d, still running 10 s after SIGTERM", leftover)
        _signal(leftover, signal.SIGKILL)
    _wait_gone(left, 5.0)
    lay.pid_file.unlink(missing_ok=True)
    if pid is None and not left:
        return "nothing was running"
    return f"stopped the stack (honcho pid {pid}; {len(left)} process(es) cleaned up after it)"


def status(settings: Settings) -> tuple[str, bool]:
    """One line per process of the running profile: pids and health; True when all is well."""
    lay = Layout(settings.data_path)
    try:
        state = json.loads(lay.state_file.read_text())
    except FileNotFoundError:
        return "the stack has not been started here (`make up`)", False
    pid = honcho_pid(lay)
    env = stack_env_for_status(lay)
    running: dict[str, list[int]] = {}
    for p, name in stack_pids(lay).items():
        running.setdefault(name, []).append(p)
    wanted = {p.name: p for p in read_procfile()}
    lines = [f"honcho: {'running, pid ' + str(pid) if pid else 'stopped'} ({state['executor']})"]
    healthy = pid is not None
    for name in state["processes"]:
        pids = sorted(running.get(name, []))
        why = check_health(wanted[name], env) if pids and name in wanted else None
        state_text = "stopped" if not pids else f"running ({len(pids)} processes)"
        health = "" if not pids else ("healthy" if why is None else f"UNHEALTHY: {why}")
        healthy = healthy and bool(pids) and why is None
        lines.append(f"  {name:24} {state_text:24} {health}")
    lines.append(f"log: {lay.log_file}")
    return "\n".join(lines), healthy


def stack_env_for_status(lay: Layout) -> dict[str, str]:
    """Enough of the stack's environment to expand health URLs, without starting anything."""
    return {**os.environ, "AIRFLOW__API__PORT": str(api_port())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="start the stack in the background and wait until healthy")
    start.add_argument("--executor", default="local", help=f"one of {', '.join(EXECUTORS)}")
    start.add_argument("--only", default="", help="process names or patterns, e.g. 'airflow-*'")
    start.add_argument("--wait", type=float, default=300.0, help="seconds to wait for health")
    sub.add_parser("down", help="stop everything `up` started")
    sub.add_parser("status", help="each process, and its health")
    sub.add_parser("dbt-parse", help="write what the silver and gold DAGs are rendered from")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("crypto_analytics").setLevel(logging.WARNING)
    settings = get_settings()
    code = 0
    try:
        if args.command == "up":
            message = up(settings, args.executor, args.only.replace(",", " ").split(), args.wait)
        elif args.command == "down":
            message = down(settings)
        elif args.command == "dbt-parse":
            from crypto_analytics.dbt_artifacts import build_airflow_artifacts

            paths = build_airflow_artifacts(settings)
            message = "dbt DAG inputs written: " + ", ".join(str(p) for p in paths)
        else:
            message, healthy = status(settings)
            code = 0 if healthy else 1
    except CryptoAnalyticsError as exc:
        sys.stderr.write(f"\033[31merror: {exc}\033[0m\n")
        return 1
    sys.stdout.write(message + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
