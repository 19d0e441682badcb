"""Run Airflow 3 on this machine: `python -m crypto_analytics.airflow_local up|down|status|manifest`.

Why our own launcher instead of `airflow standalone`: standalone keeps everything in one
foreground process with SQLite, while the platform needs the LocalExecutor on a real metadata DB
(the `airflow` database on the warehouse server, embedded or CRYPTO_DATABASE_URL), components that
survive the terminal, and settings sized for a 2-core laptop. Each component (api-server,
scheduler, dag-processor, triggerer) runs in its own session with a pid file and a log under
.data/airflow/run/, so `down` stops exactly what `up` started, and `up` twice reuses what runs.

Login: the simple auth manager with one user, `admin`, whose password is AIRFLOW_ADMIN_PASSWORD
when set, else generated once and kept in .data/airflow/admin_password.json (printed by `up`).
Any AIRFLOW__* variable in the environment overrides the defaults below; AIRFLOW_HOME does not
(a shell's AIRFLOW_HOME usually points at another installation).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from crypto_analytics.config import CONFIG_ENV_VAR, Settings, find_config_file, get_settings
from crypto_analytics.errors import ConfigError, CryptoAnalyticsError

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
METADATA_DATABASE = "airflow"
#: Started in this order: tasks need the api-server's execution API to report back.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_PATH = "/api/v2/monitor/health"
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Layout:
    """Where a local Airflow keeps its state: all of it under <data_dir>/airflow (git-ignored)."""

    home: Path
    project_root: Path

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def dags_folder(self) -> Path:
        return self.project_root / "airflow" / "dags"

    @property
    def password_file(self) -> Path:
        return self.home / "admin_password.json"

    @property
    def secrets_file(self) -> Path:
        return self.home / "local_secrets.json"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.log"


def layout(settings: Settings) -> Layout:
    return Layout(home=settings.data_path / "airflow", project_root=settings.project_root)


def sqlalchemy_url(libpq_url: str) -> str:
    """The SQLAlchemy spelling of a libpq URL; a Unix-socket host stays in `?host=`."""
    parts = urlsplit(libpq_url)
    return urlunsplit(("postgresql+psycopg2", *parts[1:]))


def _read_or_create_json(path: Path, make: dict[str, str]) -> dict[str, str]:
    """Values kept across restarts (secrets must be stable or sessions and task tokens break)."""
    if path.is_file():
        stored: dict[str, str] = json.loads(path.read_text())
        missing = {k: v for k, v in make.items() if k not in stored}
        if not missing:
            return stored
        stored.update(missing)
        make = stored
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(make, indent=2) + "\n")
    path.chmod(0o600)
    return make


def local_secrets(lay: Layout) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return _read_or_create_json(
        lay.secrets_file,
        {
            "api_secret_key": secrets.token_urlsafe(32),
            "jwt_secret": secrets.token_urlsafe(32),
            "fernet_key": Fernet.generate_key().decode(),
        },
    )


def admin_password(lay: Layout) -> str:
    """AIRFLOW_ADMIN_PASSWORD, else the generated one; written where the auth manager reads it."""
    wanted = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
    if wanted:
        lay.password_file.parent.mkdir(parents=True, exist_ok=True)
        lay.password_file.write_text(json.dumps({ADMIN_USER: wanted}) + "\n")
        lay.password_file.chmod(0o600)
        return wanted
    stored = _read_or_create_json(lay.password_file, {ADMIN_USER: secrets.token_urlsafe(12)})
    return stored[ADMIN_USER]


def airflow_executable() -> str:
    """The `airflow` of this interpreter's virtual environment, not whichever is first on PATH."""
    return str(Path(sys.executable).parent / "airflow")


def api_port() -> int:
    return int(os.environ.get("AIRFLOW__API__PORT", "8080"))


def component_env(lay: Layout, metadata_url: str, warehouse_url: str) -> dict[str, str]:
    """The environment every component (and so every task) runs with."""
    keys = local_secrets(lay)
    venv_bin = str(Path(sys.executable).parent)
    port = api_port()
    defaults = {
        "AIRFLOW_HOME": str(lay.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(lay.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # Sized for 2 cores: Airflow's default of 32 forks ~40 processes.
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
        # Cosmos reports usage to Scarf from every DAG run unless told not to.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    }
    env = dict(os.environ)
    for key, value in defaults.items():
        if not (key.startswith("AIRFLOW__") and key in os.environ):
            env[key] = value
    # Tasks reach the same warehouse and config whatever directory a worker starts in.
    env["CRYPTO_DATABASE_URL"] = warehouse_url
    env.setdefault(CONFIG_ENV_VAR, str(find_config_file().resolve()))
    # Airflow spawns `airflow ...` subprocesses by name: the venv's bin must come first.
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    return env


#: dbt parse never connects; without a warehouse URL its profile still needs values to render.
_PARSE_ONLY_URL = "postgresql://dbt-parse@localhost:5432/parse_only"
_DBT_INPUTS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")


def dbt_manifest_path(settings: Settings) -> Path:
    from crypto_analytics.dbt_runner import project_dir

    return project_dir(settings) / "target" / "manifest.json"


def dbt_manifest_is_stale(settings: Settings) -> bool:
    """True when the manifest is missing or older than any file of the dbt project."""
    from crypto_analytics.dbt_runner import project_dir

    manifest = dbt_manifest_path(settings)
    if not manifest.is_file():
        return True
    folder = project_dir(settings)
    sources = [folder / "dbt_project.yml", folder / "selectors.yml", folder / "profiles.yml"]
    for sub in _DBT_INPUTS:
        if (folder / sub).is_dir():
            sources.extend(p for p in (folder / sub).rglob("*") if p.is_file())
    built = manifest.stat().st_mtime
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def build_dbt_manifest(settings: Settings, url: str | None = None) -> Path:
    """`dbt parse` into dbt/target: the manifest Cosmos renders the silver and gold DAGs from."""
    from crypto_analytics.contract import SCHEDULED_DBT_VARS
    from crypto_analytics.dbt_runner import project_dir, run_dbt, vars_args

    target = project_dir(settings) / "target"
    connection = url or os.environ.get("CRYPTO_DATABASE_URL") or _PARSE_ONLY_URL
    # Parsed with the scheduled builds' vars: dbt re-parses everything when they differ.
    run_dbt(
        ["parse", "--target-path", str(target), *vars_args(SCHEDULED_DBT_VARS)],
        url=connection,
        settings=settings,
    )
    log.info("dbt manifest written to %s", target / "manifest.json")
    return target / "manifest.json"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_ours(pid: int, component: str) -> bool:
    """Alive and still an `airflow <component>` (a stale pid file may name a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        # Joined: Airflow retitles some processes, which rewrites their argv into one string.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except FileNotFoundError:
        return False
    # The api-server renames itself `airflow api_server -- host:...`.
    return b"airflow" in cmdline and component.replace("-", "_").encode() in cmdline.replace(
        b"-", b"_"
    )


def running_pid(lay: Layout, component: str) -> int | None:
    pid = _read_pid(lay.pid_file(component))
    return pid if pid is not None and _is_ours(pid, component) else None


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def health(port: int, timeout: float = 3.0) -> dict[str, object] | None:
    """The api-server's health document, or None while it does not answer."""
    url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
            document: dict[str, object] = json.loads(response.read())
            return document
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


def _all_healthy(document: dict[str, object] | None) -> bool:
    if not document:
        return False
    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        entry = document.get(part)
        if not isinstance(entry, dict) or entry.get("status") != "healthy":
            return False
    return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def prepare(settings: Settings) -> tuple[Layout, dict[str, str]]:
    """Warehouse migrated, metadata database present and migrated; returns the component env."""
    from crypto_analytics.migrations.runner import init_database
    from crypto_analytics.warehouse import connect, database_url, ensure_database

    lay = layout(settings)
    lay.run_dir.mkdir(parents=True, exist_ok=True)
    warehouse_url = database_url(settings)
    with connect(warehouse_url) as conn:
        init_database(conn, settings)
    metadata_url = ensure_database(warehouse_url, METADATA_DATABASE)
    if dbt_manifest_is_stale(settings):
        build_dbt_manifest(settings, warehouse_url)
    env = component_env(lay, metadata_url, warehouse_url)
    log.info("migrating the Airflow metadata database")
    migrate = subprocess.run(
        [airflow_executable(), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    (lay.run_dir / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
    if migrate.returncode != 0:
        raise ConfigError(
            f"`airflow db migrate` failed (log: {lay.run_dir / 'db-migrate.log'}):\n"
            + "\n".join((migrate.stdout + migrate.stderr).splitlines()[-25:])
        )
    return lay, env


def start_component(
    lay: Layout, component: str, env: dict[str, str]
) -> subprocess.Popen[bytes] | None:
    """Start `airflow <component>` in its own session (so `down` can stop its whole tree);
    None when it was already running."""
    pid = running_pid(lay, component)
    if pid is not None:
        log.info("%s already running (pid %d)", component, pid)
        return None
    with lay.log_file(component).open("ab") as out:
        process = subprocess.Popen(
            [airflow_executable(), component],
            env=env,
            cwd=lay.project_root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lay.pid_file(component).write_text(f"{process.pid}\n")
    log.info("started %s (pid %d, log %s)", component, process.pid, lay.log_file(component))
    return process


def up(settings: Settings, wait_s: float = 300.0) -> str:
    """Start whatever is not running and wait until every component reports healthy."""
    port = api_port()
    lay = layout(settings)
    if running_pid(lay, "api-server") is None and _port_in_use(port):
        raise ConfigError(
            f"port {port} is taken by another program; stop it or set AIRFLOW__API__PORT"
        )
    lay, env = prepare(settings)
    password = admin_password(lay)
    started = {component: start_component(lay, component, env) for component in COMPONENTS}
    deadline = time.monotonic() + wait_s
    while not _all_healthy(health(port)):
        for component, process in started.items():
            if process is not None and process.poll() is not None:
                raise ConfigError(
                    f"airflow {component} exited during start-up; last lines of "
                    f"{lay.log_file(component)}:\n{_tail(lay.log_file(component))}"
                )
        if time.monotonic() > deadline:
            raise ConfigError(
                f"Airflow did not become healthy within {wait_s:.0f} s; health: {health(port)}; "
                f"logs in {lay.run_dir}"
            )
        time.sleep(2)
    return (
        f"Airflow is up at http://localhost:{port}\n"
        f"  login: {ADMIN_USER} / {password}\n"
        f"  (password from AIRFLOW_ADMIN_PASSWORD, else kept in {lay.password_file})\n"
        f"  logs: {lay.run_dir}; stop with `make down`\n"
        f"  DAGs start paused: unpause with `airflow dags unpause bronze_ingestion` or in the UI"
    )


def _wait_until_gone(probe: int, *, group: bool, timeout: float) -> bool:
    """Poll until the process (or its whole process group) has exited; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            (os.killpg if group else os.kill)(probe, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _stop(pid: int, component: str) -> None:
    """SIGTERM the component so it shuts its own workers down, then clean up its process group
    (it was started in a session of its own, so the group holds only what it spawned)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not _wait_until_gone(pid, group=False, timeout=_STOP_TIMEOUT_S):
        log.warning("%s (pid %d) ignored SIGTERM for %.0f s", component, pid, _STOP_TIMEOUT_S)
    _signal_group(pid, signal.SIGTERM)
    if not _wait_until_gone(pid, group=True, timeout=5.0):
        log.warning("killing what is left of %s's process group %d", component, pid)
        _signal_group(pid, signal.SIGKILL)


def down(settings: Settings) -> str:
    """Stop every component `up` started (reverse order), and remove their pid files."""
    lay = layout(settings)
    stopped = []
    for component in reversed(COMPONENTS):
        pid = running_pid(lay, component)
        if pid is not None:
            _stop(pid, component)
            stopped.append(component)
        lay.pid_file(component).unlink(missing_ok=True)
    return f"stopped: {', '.join(stopped)}" if stopped else "nothing was running"


def status(settings: Settings) -> str:
    lay = layout(settings)
    lines = []
    for component in COMPONENTS:
        pid = running_pid(lay, component)
        lines.append(f"{component:14} {'running, pid ' + str(pid) if pid else 'stopped'}")
    document = health(api_port())
    lines.append(f"health: {json.dumps(document) if document else 'api-server not answering'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crypto_analytics.airflow_local",
        description="Run Airflow locally under .data/airflow (api-server on :8080).",
    )
    parser.add_argument("command", choices=["up", "down", "status", "manifest"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = get_settings()
    try:
        if args.command == "up":
            message = up(settings)
        elif args.command == "down":
            message = down(settings)
        elif args.command == "manifest":
            message = f"dbt manifest: {build_dbt_manifest(settings)}"
        else:
            message = status(settings)
    except CryptoAnalyticsError as exc:
        log.error("%s", exc)
        return 1
    sys.stdout.write(message + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
