"""The fault matrix: every fault ends in a true record and one clear line.

- concurrent runs: two identical backfills at once, and a replay racing an ingest;
- `kill -9` of the CLI at several points (while fetching, between fetch and load);
- the database server killed in the middle of a load (a private server started here);
- corrupt lake files (a truncated Parquet, a missing payload, a manifest that is not JSON);
- a warehouse that accepts connections and never answers, refuses them, or does not resolve;
- secrets in every place a URL, a header or a server's echo can hold them.

Each asserts exact row counts (no duplicate, nothing lost), what the audit says, and what the
user sees: one line, exit 1, no traceback, no secret. Child processes run the real CLI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from crypto_analytics.cli import app
from crypto_analytics.config import get_settings
from crypto_analytics.ingestion import pipeline
from crypto_analytics.warehouse import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

runner = CliRunner()
SYMBOLS = ["BTC", "ETH", "SOL"]
BACKFILL = [
    "backfill", "--source", "synthetic", "-i", "1h", "-d", "ohlcv",
    "--since", "2024-01-01", "--until", "2024-01-21",
    *(arg for symbol in SYMBOLS for arg in ("--symbol", symbol)),
]  # fmt: skip
EXPECTED_ROWS = len(SYMBOLS) * 20 * 24


def _count(url: str, query: str = "select count(*) from bronze.raw_crypto_prices") -> int:
    with connect(url) as conn:
        return int(conn.execute(query).fetchone()[0])


def _audit_adds_up(url: str) -> None:
    """Summed over the audit, rows_inserted equals what bronze holds, and nothing is running."""
    with connect(url) as conn:
        inserted, running = conn.execute(
            "select coalesce(sum(rows_inserted), 0), count(*) filter (where status = 'running')"
            " from bronze.ingestion_audit"
        ).fetchone()
    assert (inserted, running) == (_count(url), 0)


def _no_duplicates(url: str) -> None:
    assert (
        _count(
            url,
            "select count(*) from (select 1 from bronze.raw_crypto_prices"
            ' group by source_api, symbol, interval, "timestamp" having count(*) > 1) d',
        )
        == 0
    )


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The real console command in a child process (the test's environment plus `env`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "crypto_analytics.cli", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# --- concurrent runs ---------------------------------------------------------------------------


def test_two_identical_backfills_at_once_land_each_row_once(warehouse_url):
    children = [_cli(*BACKFILL), _cli(*BACKFILL)]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert _count(warehouse_url) == EXPECTED_ROWS
    _no_duplicates(warehouse_url)
    _audit_adds_up(warehouse_url)


def test_replay_racing_an_ingest_lands_each_row_once(warehouse_url):
    first = runner.invoke(app, BACKFILL)
    assert first.exit_code == 0, first.output
    with connect(warehouse_url) as conn:
        conn.execute("delete from bronze.raw_crypto_prices where symbol = 'ETH'")
    later = [*BACKFILL[:-6], "--symbol", "DOGE", "--symbol", "SOL"]
    children = [_cli("replay"), _cli(*later)]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert _count(warehouse_url) == len(["BTC", "ETH", "SOL", "DOGE"]) * 20 * 24
    _no_duplicates(warehouse_url)


# --- kill -9 at several points -----------------------------------------------------------------

#: Runs the CLI with a pause at one point of the ingestion, announced on stdout.
PAUSING_CLI = textwrap.dedent(
    """
    import sys, time
    from crypto_analytics.ingestion import lake, loader

    point = sys.argv[1]

    def pause(real):
        def paused(*args, **kwargs):
            print("PAUSED", flush=True)
            time.sleep(600)
            return real(*args, **kwargs)
        return paused

    if point == "fetching":
        lake.write_batch = pause(lake.write_batch)
    elif point == "loading":
        loader.load_batch = pause(loader.load_batch)
    from crypto_analytics.cli import app
    sys.argv = ["crypto-analytics", *sys.argv[2:]]
    app()
    """
)


def _wait_for(child: subprocess.Popen[str], text: str, timeout: float = 120) -> None:
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if text in line:
            return
        if not line and child.poll() is not None:
            break
    pytest.fail(f"the child never printed {text!r}")


@pytest.mark.parametrize("point", ["fetching", "loading"])
def test_kill_9_leaves_a_true_record_and_the_rerun_lands_exactly_once(
    warehouse_url, tmp_path, point
):
    script = tmp_path / "pausing_cli.py"
    script.write_text(PAUSING_CLI)
    child = subprocess.Popen(
        [sys.executable, str(script), point, *BACKFILL],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(child, "PAUSED")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    # the killed batch is visible as running; nothing of it is in bronze
    with connect(warehouse_url) as conn:
        running = conn.execute(
            "select batch_id from bronze.ingestion_audit where status = 'running'"
        ).fetchall()
        assert len(running) == 1
        conn.execute("update bronze.ingestion_audit set started_at = now() - interval '3 hours'")
        conn.commit()
    assert _count(warehouse_url) == 0

    # the next run marks it failed, and the rerun lands every row exactly once
    rerun = runner.invoke(app, BACKFILL)
    assert rerun.exit_code == 0, rerun.output
    assert "marked 1 abandoned batch(es) of earlier runs failed" in rerun.output
    assert _count(warehouse_url) == EXPECTED_ROWS
    with connect(warehouse_url) as conn:
        (status, error) = conn.execute(
            "select status, error from bronze.ingestion_audit where batch_id = %s",
            (running[0][0],),
        ).fetchone()
    assert status == "failed" and error.startswith("abandoned")
    _audit_adds_up(warehouse_url)
    summary = runner.invoke(app, ["summary"])
    (statuses,) = [line for line in summary.output.splitlines() if line.startswith("batches:")]
    assert statuses == "batches: failed 1, succeeded 1"


# --- the database server killed in the middle of a load ----------------------------------------


class PrivateServer:
    """A PostgreSQL server of this test's own (the machine's binaries), which the test may kill.

    As root, initdb and the server run as the `postgres` user (PostgreSQL refuses root)."""

    def __init__(self, root: Path) -> None:
        import glob
        import shutil

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        self.pg_ctl = Path(found[-1]) if found else shutil.which("pg_ctl")
        if self.pg_ctl is None:
            pytest.skip("no PostgreSQL server binaries (pg_ctl) on this machine")
        self.bin = Path(self.pg_ctl).parent
        self.data, self.log = root / "data", root / "server.log"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(root, "postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._run(
            self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"
        )
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: object) -> None:
        subprocess.run([*self.as_user, *map(str, args)], check=True, capture_output=True)

    def start(self) -> None:
        """Start (again); after a kill, the dead server's processes may need a moment to exit
        and release its shared memory, so a refused start is retried for a while."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        for _ in range(60):
            try:
                self._run(
                    self.pg_ctl, "-D", self.data, "-o", options, "-l", self.log, "-w", "start"
                )
                return
            except subprocess.CalledProcessError:
                time.sleep(0.5)
        pytest.fail(f"the private server did not start again: {self.log.read_text()[-1500:]}")

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash or the OOM killer would."""
        pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.pg_ctl), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )


@pytest.fixture
def private_server(tmp_path_factory) -> Iterator[PrivateServer]:
    """A migrated private server (stopped and removed at the end)."""
    import shutil
    import tempfile

    from crypto_analytics.migrations.runner import init_database

    root = Path(tempfile.mkdtemp(prefix="crypto-faults-"))
    server = PrivateServer(root)
    try:
        with psycopg.connect(server.url) as conn:
            init_database(conn, get_settings())
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


LOAD_UNTIL_KILLED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from crypto_analytics.ingestion import loader, pipeline

    flag = Path(sys.argv[1])
    real_encode = loader.encode_frame

    def encode_then_wait(*args, **kwargs):
        for number, chunk in enumerate(real_encode(*args, **kwargs)):
            yield chunk
            if number == 0:
                print("COPYING", flush=True)
                while not flag.exists():
                    time.sleep(0.05)

    loader.encode_frame = encode_then_wait
    try:
        pipeline.load_from_lake(sys.argv[2])
    except Exception as exc:
        print("ERROR", type(exc).__name__, exc, flush=True)
        sys.exit(1)
    print("LOADED", flush=True)
    """
)


def test_a_database_killed_during_copy_loses_nothing_and_the_rerun_is_exact(
    private_server, tmp_path, monkeypatch
):
    url = private_server.url
    monkeypatch.setenv("CRYPTO_DATABASE_URL", url)
    get_settings.cache_clear()
    (request,) = pipeline.plan_requests(
        sources=["synthetic"], symbols=SYMBOLS, intervals=["1h"], datasets=["ohlcv"],
        since=datetime(2024, 1, 1, tzinfo=UTC), until=datetime(2024, 1, 21, tzinfo=UTC),
    )  # fmt: skip
    manifest = pipeline.fetch_to_lake(request)
    flag = tmp_path / "go"
    script = tmp_path / "load.py"
    script.write_text(LOAD_UNTIL_KILLED)
    child = subprocess.Popen(
        [sys.executable, str(script), str(flag), manifest],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CRYPTO_DATABASE_URL": url},
    )
    _wait_for(child, "COPYING")
    private_server.kill()  # the server dies mid-COPY
    time.sleep(0.5)
    flag.touch()
    output = child.communicate(timeout=120)[0]
    assert child.returncode == 1
    assert "ERROR LoadError" in output and "rolled back" in output

    private_server.start()  # the server comes back (crash recovery)
    assert _count(url) == 0  # nothing of the batch survived the crash
    with connect(url) as conn:
        (status,) = conn.execute("select status from bronze.ingestion_audit").fetchone()
    assert status in ("running", "failed")  # running when the server died before the mark
    report = pipeline.load_from_lake(manifest)  # the retry, with the same batch id
    assert (report.rows_inserted, report.rows_duplicate) == (EXPECTED_ROWS, 0)
    assert _count(url) == EXPECTED_ROWS
    _audit_adds_up(url)


# --- corrupt lake files ------------------------------------------------------------------------


def test_replay_loads_every_good_batch_and_names_each_bad_one(warehouse_url, settings):
    for symbol in ["BTC", "ETH", "SOL", "DOGE"]:
        args = [*BACKFILL[:-6], "--symbol", symbol]
        assert runner.invoke(app, args).exit_code == 0
    manifests = sorted((settings.lake_path / "manifests").glob("*/*.json"))
    batches = {path: pipeline.lake.load_manifest(path) for path in manifests}
    truncated, missing, garbled, good = manifests
    parquet = batches[truncated].absolute(batches[truncated].parquet_path)
    parquet.write_bytes(parquet.read_bytes()[:100])
    batches[missing].absolute(batches[missing].payloads[0].path).unlink()
    garbled.write_text('{"batch_id": "not json')
    with connect(warehouse_url) as conn:
        conn.execute("truncate bronze.raw_crypto_prices, bronze.watermarks")

    result = runner.invoke(app, ["replay"])

    assert result.exit_code == 1
    assert "replayed 1 batches: 480 rows inserted" in result.output
    assert f"failed: {truncated}:" in result.output and "sha256" in result.output
    assert f"failed: {missing}:" in result.output and "missing" in result.output
    assert f"failed: {garbled}:" in result.output and "malformed" in result.output
    assert "error: 3 lake batch(es) could not be loaded" in result.output
    assert "Traceback" not in result.output
    assert _count(warehouse_url) == 480
    assert pipeline.lake.load_manifest(good).symbols == _symbols_in_bronze(warehouse_url)
    # the two bad batches whose manifests could be read are audited as failed, by file
    with connect(warehouse_url) as conn:
        failed = conn.execute(
            "select replay_of, error from bronze.ingestion_audit where status = 'failed'"
        ).fetchall()
    assert {replay_of for replay_of, _ in failed} == {
        batches[truncated].batch_id,
        batches[missing].batch_id,
    }
    assert all(error.startswith("replay of ") for _, error in failed)


def _symbols_in_bronze(url: str) -> list[str]:
    with connect(url) as conn:
        return [r[0] for r in conn.execute("select distinct symbol from bronze.raw_crypto_prices")]


# --- a warehouse that cannot be used -----------------------------------------------------------


@pytest.fixture
def mute_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("kind", ["mute", "refused", "unresolvable"])
def test_an_unusable_warehouse_fails_fast_in_one_line(monkeypatch, mute_listener, kind):
    host = {
        "mute": f"127.0.0.1:{mute_listener}",
        "refused": f"127.0.0.1:{_refused_port()}",
        "unresolvable": "warehouse.nonexistent.invalid:5432",
    }[kind]
    monkeypatch.setenv("CRYPTO_DATABASE_URL", f"postgresql://crypto:pw-in-url-9@{host}/crypto")
    monkeypatch.setenv("CRYPTO_WAREHOUSE__CONNECT_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    result = runner.invoke(app, ["summary"])  # a mute server used to hang this forever
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert {
        "mute": "did not answer within 1s",
        "refused": "it refused the connection",
        "unresolvable": "its host name does not resolve",
    }[kind] in result.output
    assert "pw-in-url-9" not in result.output


# --- secrets in every position -----------------------------------------------------------------


def test_a_password_in_the_url_never_reaches_a_message(monkeypatch):
    port = _refused_port()
    monkeypatch.setenv(
        "CRYPTO_DATABASE_URL",
        f"postgresql://admin:userinfo-secret-1@127.0.0.1:{port}/crypto"
        "?sslmode=disable&password=query-secret-2",
    )
    get_settings.cache_clear()
    for args in (["summary"], ["db", "url"], ["ingest", "--source", "synthetic"]):
        result = runner.invoke(app, args)
        assert "userinfo-secret-1" not in result.output, args
        assert "query-secret-2" not in result.output, args


def test_a_key_the_server_echoes_never_reaches_the_cli_audit_log_or_lake(
    warehouse_url, monkeypatch, caplog, settings
):
    from pytest_httpserver import HTTPServer

    key = "CG-echoed-key-1234567"
    with HTTPServer(host="127.0.0.1", port=0) as server:
        server.expect_request("/api/v3/coins/markets").respond_with_json(
            {"status": {"error_code": 10002, "error_message": f"Invalid API key {key}"}},
            status=401,
        )
        monkeypatch.setenv("COINGECKO_API_KEY", key)
        monkeypatch.setenv("CRYPTO_SOURCES__COINGECKO__PLAN", "demo")
        get_settings.cache_clear()
        from crypto_analytics.ingestion.sources import coingecko

        real_init = coingecko.CoinGeckoSource.__init__

        def local(self, settings, **kwargs):
            real_init(self, settings, base_url=server.url_for("/api/v3"), **kwargs)

        monkeypatch.setattr(coingecko.CoinGeckoSource, "__init__", local)
        caplog.set_level("DEBUG")
        result = runner.invoke(app, ["ingest", "--source", "coingecko", "--symbol", "BTC"])
        sent = server.log[0][0]

    assert sent.headers["x-cg-demo-api-key"] == key  # it was used...
    assert result.exit_code == 1 and "Invalid API key ***" in result.output
    assert key not in result.output  # ...and never shown
    assert key not in caplog.text
    with connect(warehouse_url) as conn:
        errors = [r[0] for r in conn.execute("select error from bronze.ingestion_audit")]
    assert errors and all(key not in (e or "") for e in errors)
    lake_text = "".join(
        p.read_text(errors="replace") for p in settings.lake_path.rglob("*") if p.is_file()
    )
    assert key not in lake_text


def test_settings_errors_never_print_a_secret(monkeypatch, tmp_path):
    import yaml

    original = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config/config.yaml").read_text()
    )
    original["tokens"].append(dict(original["tokens"][0]))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(original))
    monkeypatch.setenv("CRYPTO_CONFIG_FILE", str(path))
    monkeypatch.setenv("CRYPTO_DATABASE_URL", "postgresql://u:settings-secret-3@h/db")
    get_settings.cache_clear()
    result = runner.invoke(app, ["summary"])
    assert result.exit_code == 1 and "listed twice" in result.output
    assert "settings-secret-3" not in result.output
