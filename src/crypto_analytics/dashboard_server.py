"""Start the Streamlit dashboard (`crypto-analytics dashboard`, `make dashboard`, the Procfile).

Why a command of our own instead of a bare `streamlit run` in three places: the Makefile, the
Procfile, docker-compose, the browser tests and the benchmark all start the same app with the
same flags (headless, no usage statistics, no file watcher, the viewer toolbar), written once
here. `serve` replaces the current process with Streamlit so a process manager's signals reach
it directly; `running_dashboard` starts one in the background for tests and benchmarks.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8501
HEALTH_PATH = "/_stcore/health"
_STOP_TIMEOUT_S = 10.0


def app_path(settings: Settings | None = None) -> Path:
    """streamlit/app.py in the checkout that holds config/."""
    path = (settings or get_settings()).project_root / "streamlit" / "app.py"
    if not path.is_file():
        raise ConfigError(f"the dashboard app {path} is missing (is this a full checkout?)")
    return path


def streamlit_command(port: int, address: str, settings: Settings | None = None) -> list[str]:
    """The `streamlit run` command line for the dashboard."""
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port (1-65535)")
    return [
        sys.executable, "-m", "streamlit", "run", str(app_path(settings)),
        "--server.port", str(port),
        "--server.address", address,
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
        "--theme.base", "light",
    ]  # fmt: skip


def serve(port: int = DEFAULT_PORT, address: str = "0.0.0.0") -> None:
    """Run the dashboard in the foreground (this process becomes Streamlit)."""
    command = streamlit_command(port, address)
    log.info("starting the dashboard on http://%s:%d", address, port)
    os.execv(command[0], command)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + HEALTH_PATH, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_dashboard(
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    log_path: Path | None = None,
    start_timeout_s: float = 90.0,
) -> Iterator[str]:
    """A dashboard started in the background for the duration of the block; yields its URL.

    `env` replaces the environment of the Streamlit process (the warehouse URL, the cache).
    The process runs in its own session and its whole group is stopped at the end.
    """
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    output = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        streamlit_command(port, "127.0.0.1"),
        env=dict(env) if env is not None else None,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + start_timeout_s
        while not _healthy(base_url):
            if process.poll() is not None:
                raise ConfigError(
                    f"the dashboard exited with code {process.returncode} before answering"
                    + (f" (log: {log_path})" if log_path else "")
                )
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"the dashboard did not answer on {base_url} in {start_timeout_s:.0f} s"
                )
            time.sleep(0.2)
        yield base_url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if log_path:
            output.close()  # type: ignore[union-attr]
