"""Benchmark the bronze loader against a raw COPY and pandas.to_sql (`make bench`).

Loads synthetic hourly candles (numpy, realistic columns) in a fresh database created for the
run and dropped afterwards:
  1. the project's loader (`load_batch`: probe, binary COPY, watermarks, audit, one
     transaction) on new rows, which takes the direct COPY path;
  2. the same batch again: every row is a duplicate and goes through staging + on conflict;
  3. a raw binary COPY of the same rows into a plain table without indexes (the target's
     reference: the loader should reach half its throughput);
  4. a raw binary COPY, rows pre-sorted, into an empty table with bronze's primary key and
     indexes: the floor that any loader writing bronze's schema pays;
  5. a raw text COPY fed by DataFrame.to_csv (what a hand-written COPY loader usually does);
  6. pandas.DataFrame.to_sql through SQLAlchemy + psycopg on a sample (default and multi).
The server comes from CRYPTO_DATABASE_URL, else the embedded one. Printing is the point here.
Server CPU is read from /proc when the server runs on this machine: on a shared machine it is
steadier than wall time.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy import create_engine

from crypto_analytics.config import get_settings
from crypto_analytics.ingestion.frames import COLUMNS, NATURAL_KEY, Dataset, conform
from crypto_analytics.ingestion.loader import bronze_column_types, load_batch, order_by_key
from crypto_analytics.ingestion.pgcopy import encode_frame
from crypto_analytics.migrations.runner import init_database
from crypto_analytics.warehouse import database_url, url_for_database

TARGET_RATIO = 0.5
SOURCE = "bench"
INTERVAL = "1h"


def synthetic_candles(rows: int, symbols: list[str], seed: int = 7) -> pd.DataFrame:
    """Hourly candles per symbol: geometric random walk with fat-ish tails, valid OHLC."""
    rng = np.random.default_rng(seed)
    per_symbol = -(-rows // len(symbols))
    start = pd.Timestamp("2020-01-01", tz="UTC")
    frames = []
    for i, symbol in enumerate(symbols):
        n = min(per_symbol, rows - i * per_symbol)
        if n <= 0:
            break
        first_price = float(np.exp(rng.uniform(np.log(1e-5), np.log(60_000))))
        log_returns = rng.standard_t(4, n) * 0.006
        close = first_price * np.exp(np.cumsum(log_returns))
        open_ = np.concatenate([[first_price], close[:-1]])
        wick = np.abs(rng.normal(0, 0.003, (2, n)))
        high = np.maximum(open_, close) * (1 + wick[0])
        low = np.minimum(open_, close) * (1 - wick[1])
        volume = rng.lognormal(mean=8, sigma=1.2, size=n)
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": pd.date_range(start, periods=n, freq="h"),
                    "symbol": symbol,
                    "interval": INTERVAL,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                    "quote_volume": volume * (open_ + high + low + close) / 4,
                    "quote_currency": "USDT",
                    "source_api": SOURCE,
                }
            )
        )
    return conform(pd.concat(frames, ignore_index=True), Dataset.OHLCV)


@dataclass
class Runs:
    """Wall seconds of each run, and the server backend's CPU seconds when it is readable."""

    rows: int
    wall: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, server_cpu: float | None) -> None:
        self.wall.append(wall)
        if server_cpu is not None:
            self.server_cpu.append(server_cpu)

    @property
    def seconds(self) -> float:
        return statistics.median(self.wall)


def backend_cpu(pid: int) -> float | None:
    """utime + stime of a local server backend; None when the server runs elsewhere.

    Why: on a shared machine wall time swings with other load, the backend's CPU does not.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(runs: Runs, url: str, work: Callable[[psycopg.Connection], object]) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        pid = conn.info.backend_pid
        cpu_before = backend_cpu(pid)
        started = time.perf_counter()
        result = work(conn)
        wall = time.perf_counter() - started
        cpu_after = backend_cpu(pid)
    used = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    runs.add(wall, used)
    return result


def reset(url: str, *tables: str) -> None:
    """Empty the tables and checkpoint, so every run starts from the same state."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(sql.SQL(t) for t in tables)))
        conn.execute("checkpoint")


def loader_run(frame: pd.DataFrame, batch_id: uuid.UUID) -> Callable[[psycopg.Connection], object]:
    def work(conn: psycopg.Connection) -> object:
        report = load_batch(
            conn,
            batch_id=batch_id,
            source_api=SOURCE,
            dataset=Dataset.OHLCV,
            interval=INTERVAL,
            valid=frame,
            rejected=None,
            raw_payload_path=None,
        )
        assert report.rows_inserted + report.rows_duplicate == len(frame), report
        return report.load_path

    return work


def binary_copy_run(table: str, frame: pd.DataFrame) -> Callable[[psycopg.Connection], object]:
    """The same binary encoder the loader uses, straight into `table`, one transaction."""

    def work(conn: psycopg.Connection) -> object:
        columns = [*COLUMNS[Dataset.OHLCV], "_batch_id"]
        types = bronze_column_types(conn, table)
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        statement = sql.SQL("copy {} ({}) from stdin (format binary)").format(sql.SQL(table), names)
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk in encode_frame(
                frame, [(c, types[c]) for c in columns], constants={"_batch_id": uuid.uuid4()}
            ):
                copy.write(chunk)
        return None

    return work


def csv_copy_run(frame: pd.DataFrame) -> Callable[[psycopg.Connection], object]:
    def work(conn: psycopg.Connection) -> object:
        buffer = io.StringIO()
        frame.assign(_batch_id=str(uuid.uuid4())).to_csv(buffer, index=False, header=False)
        names = sql.SQL(", ").join(map(sql.Identifier, [*COLUMNS[Dataset.OHLCV], "_batch_id"]))
        statement = sql.SQL("copy public.raw_copy ({}) from stdin (format csv)").format(names)
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
            copy.write(buffer.getvalue())
        return None

    return work


def to_sql_run(url: str, sample: pd.DataFrame, method: str | None) -> Runs:
    runs = Runs(len(sample))
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    table = f"to_sql_{method or 'default'}"
    try:
        sample.head(0).to_sql(table, engine, if_exists="replace", index=False)
        started = time.perf_counter()
        # multi binds every value: 11 columns x 5,000 rows stays under PostgreSQL's 65,535 limit
        sample.to_sql(
            table, engine, if_exists="append", index=False, method=method, chunksize=5_000
        )
        runs.add(time.perf_counter() - started, None)
    finally:
        engine.dispose()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000, help="rows for to_sql")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the median is kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    settings = get_settings()
    server = database_url(settings)
    name = f"bench_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = url_for_database(server, name)
    try:
        with psycopg.connect(url) as conn:
            init_database(conn, settings)
            conn.execute(
                "create table public.raw_copy (like bronze.raw_crypto_prices including defaults)"
            )
            conn.execute(
                "create table public.raw_indexed (like bronze.raw_crypto_prices including all)"
            )
        symbols = [token.symbol for token in settings.tokens]
        started = time.perf_counter()
        frame = synthetic_candles(args.rows, symbols)
        n = len(frame)
        print(
            f"generated {n:,} hourly candles for {len(symbols)} symbols in {time.perf_counter() - started:.2f}s"
        )
        presorted = order_by_key(frame, NATURAL_KEY[Dataset.OHLCV]).frame

        loader, rerun, raw, indexed, csv = Runs(n), Runs(n), Runs(n), Runs(n), Runs(n)
        paths = set()
        for number in range(args.repeat):
            reset(url, "bronze.raw_crypto_prices", "bronze.watermarks", "bronze.ingestion_audit")
            batch_id = uuid.uuid4()
            paths.add(measure(loader, url, loader_run(frame, batch_id)))
            paths.add(measure(rerun, url, loader_run(frame, batch_id)))
            reset(url, "public.raw_copy")
            measure(raw, url, binary_copy_run("public.raw_copy", frame))
            reset(url, "public.raw_indexed")
            measure(indexed, url, binary_copy_run("public.raw_indexed", presorted))
            if number == 0:  # slow and only for context: once is enough
                reset(url, "public.raw_copy")
                measure(csv, url, csv_copy_run(frame))
        sample = frame.sample(n=min(args.sample, n), random_state=1)
        results = {
            "loader load_batch, new rows": loader,
            "loader rerun of the same batch, every row a duplicate": rerun,
            "raw binary COPY into an unindexed table": raw,
            "raw binary COPY into a table with bronze's indexes": indexed,
            "raw text COPY fed by DataFrame.to_csv": csv,
            "DataFrame.to_sql, SQLAlchemy+psycopg, default": to_sql_run(url, sample, None),
            "DataFrame.to_sql, SQLAlchemy+psycopg, method=multi": to_sql_run(url, sample, "multi"),
        }
        print(
            f"median of {args.repeat} runs (text COPY and to_sql: one run); loader paths {sorted(paths)}"
        )
        print(f"  {'':<56} {'rows':>9} {'wall s':>8} {'rows/s':>10} {'server CPU s':>13}")
        for label, runs in results.items():
            cpu = f"{statistics.median(runs.server_cpu):13.2f}" if runs.server_cpu else f"{'-':>13}"
            print(
                f"  {label:<56} {runs.rows:>9,} {runs.seconds:8.2f} {runs.rows / runs.seconds:>10,.0f} {cpu}"
            )
        ratio = raw.seconds / loader.seconds
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        print(
            f"loader / raw binary COPY throughput = {ratio:.2f} ({verdict} the {TARGET_RATIO} target)"
        )
        print(f"loader / raw COPY into bronze's indexes = {indexed.seconds / loader.seconds:.2f}")
        print(
            "all wall runs (s): "
            + "; ".join(
                f"{label.split(',')[0]} {[round(w, 2) for w in runs.wall]}"
                for label, runs in list(results.items())[:4]
            )
        )
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
