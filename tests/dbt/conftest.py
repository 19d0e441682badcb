"""Fixtures for the dbt tests: real bronze history from ../shared/data and a handle to run dbt.

Shared by the silver and gold tests. The expensive part of a dbt test is the build, so the
databases here are module- or session-scoped clones of the migrated template (the root
conftest's `_template_database`), each loaded straight from the shared CSV/JSON files with COPY:

- `fresh_database()`   -> URL of a new, empty migrated database (dropped at session end);
- `bronze_loader(url)` -> a `BronzeLoader` writing real history into that database's bronze;
- `copy_database(url)` -> URL of a new database copied from a built one (so several tests can
  start from one expensive build; row versions included);
- `dbt_factory(url)`   -> a `Dbt` handle running dbt against it with this session's target path;
- `scheduled_dbt_factory(url)` -> the same, run as the scheduled Airflow builds run dbt (with
  SCHEDULED_DBT_VARS: incremental data tests), from a target folder of its own;
- `daily_bronze_url`   -> (module scope) a database already holding the daily Binance history
  of DAILY_SYMBOLS plus CoinGecko market data for them, nothing built yet.

Tests never share a database they write to; every dbt call passes its own --target-path (the
silver and gold helpers' runs must not share dbt's target folder).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from crypto_analytics.contract import SCHEDULED_DBT_VARS
from crypto_analytics.dbt_runner import run_dbt, vars_args
from crypto_analytics.warehouse import url_for_database

#: Tokens with daily Binance klines in daily/binance_recent_rongyouwow (BTC/ETH from 2017-08,
#: LINK 2019-01, UNI 2020-09, the others 2023-06; all end 2026-03-04, AVAX 2026-03-03).
#: Categories: Layer 1, Payment, Meme, Infrastructure, DeFi, Other (no NFT token has this data).
DAILY_SYMBOLS: tuple[str, ...] = (
    "BTC", "ETH", "SOL", "AVAX", "ADA", "BNB", "XRP", "DOGE", "PEPE", "LINK", "NEAR", "UNI", "AAVE",
)  # fmt: skip

_OHLCV_COLUMNS = (
    "timestamp", "symbol", "interval", "open", "high", "low", "close", "volume", "quote_volume",
    "quote_currency", "source_api", "_batch_id",
)  # fmt: skip
_MARKET_COLUMNS = (
    "timestamp", "symbol", "price", "market_cap", "circulating_supply", "total_volume",
    "quote_currency", "source_api", "_batch_id",
)  # fmt: skip


def _as_utc(value: date | datetime | str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _window(frame: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    """Rows with start <= timestamp <= end (either bound optional)."""
    lo, hi = _as_utc(start), _as_utc(end)
    mask = pd.Series(True, index=frame.index)
    if lo is not None:
        mask &= frame["timestamp"] >= lo
    if hi is not None:
        mask &= frame["timestamp"] <= hi
    return frame.loc[mask]


@dataclass
class BronzeLoader:
    """Writes real history from ../shared/data into one database's bronze tables.

    Every call is one batch: a fresh `_batch_id`, and a `succeeded` row in bronze.ingestion_audit
    counting what landed, as the ingestion would leave it. Bounds are inclusive UTC dates/times.
    """

    url: str
    data: Path
    batches: list[uuid.UUID] = field(default_factory=list)

    # --- readers (pure: frames in bronze's column layout) ---------------------------------

    def binance_daily_frame(self, symbol: str) -> pd.DataFrame:
        """daily/binance_recent_rongyouwow/<SYM>USDT_1d.csv as bronze OHLCV rows (USDT)."""
        path = self.data / "daily" / "binance_recent_rongyouwow" / f"{symbol}USDT_1d.csv"
        raw = pd.read_csv(path)
        return self._ohlcv(raw, "timestamp", symbol, "1d", "USDT", "binance")

    def yahoo_daily_frame(self, symbol: str) -> pd.DataFrame:
        """daily/yahoo_budydeveloper/<SYM>-USD_1d.csv as bronze OHLCV rows (USD)."""
        path = self.data / "daily" / "yahoo_budydeveloper" / f"{symbol}-USD_1d.csv"
        raw = pd.read_csv(path)
        return self._ohlcv(raw, "datetime", symbol, "1d", "USD", "yahoo")

    def binance_intraday_frame(self, symbol: str, interval: str = "1h") -> pd.DataFrame:
        """intraday/binance_ccxt_freqtrade*/<SYM>_USDT-<interval>.json (ccxt rows) as bronze rows."""
        folder = (
            "binance_ccxt_freqtrade" if interval in ("1h", "4h") else "binance_ccxt_freqtrade_2021"
        )
        path = self.data / "intraday" / folder / f"{symbol}_USDT-{interval}.json"
        rows = json.loads(path.read_text())
        raw = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close", "volume"])
        raw["ms"] = pd.to_datetime(raw["ms"], unit="ms", utc=True)
        return self._ohlcv(raw, "ms", symbol, interval, "USDT", "binance")

    def coingecko_frame(self, symbol: str) -> pd.DataFrame:
        """daily/coingecko/<sym>-usd-max.csv as bronze market rows (USD; no supply column)."""
        folder = self.data / "daily" / "coingecko"
        matches = [p for p in folder.iterdir() if p.name.lower() == f"{symbol.lower()}-usd-max.csv"]
        if not matches:
            raise FileNotFoundError(f"no CoinGecko export for {symbol} in {folder}")
        raw = pd.read_csv(matches[0])
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(raw["snapped_at"].str.replace(" UTC", ""), utc=True),
                "symbol": symbol,
                "price": raw["price"].astype("float64"),
                "market_cap": raw["market_cap"].astype("float64"),
                "circulating_supply": float("nan"),
                "total_volume": raw["total_volume"].astype("float64"),
                "quote_currency": "USD",
                "source_api": "coingecko",
            }
        )
        return frame.drop_duplicates("timestamp", keep="last").reset_index(drop=True)

    @staticmethod
    def _ohlcv(
        raw: pd.DataFrame, time_column: str, symbol: str, interval: str, quote: str, source: str
    ) -> pd.DataFrame:
        stamps = pd.to_datetime(raw[time_column], utc=True)
        return pd.DataFrame(
            {
                "timestamp": stamps,
                "symbol": symbol,
                "interval": interval,
                "open": raw["open"].astype("float64"),
                "high": raw["high"].astype("float64"),
                "low": raw["low"].astype("float64"),
                "close": raw["close"].astype("float64"),
                "volume": raw["volume"].astype("float64"),
                "quote_volume": float("nan"),
                "quote_currency": quote,
                "source_api": source,
            }
        )

    # --- writers ---------------------------------------------------------------------------

    def binance_daily(
        self, symbols: Sequence[str] = DAILY_SYMBOLS, start: Any = None, end: Any = None
    ) -> int:
        frames = [_window(self.binance_daily_frame(s), start, end) for s in symbols]
        return self.write_ohlcv(pd.concat(frames), "binance", "1d")

    def yahoo_daily(self, symbols: Sequence[str], start: Any = None, end: Any = None) -> int:
        frames = [_window(self.yahoo_daily_frame(s), start, end) for s in symbols]
        return self.write_ohlcv(pd.concat(frames), "yahoo", "1d")

    def binance_intraday(
        self, symbols: Sequence[str], interval: str = "1h", start: Any = None, end: Any = None
    ) -> int:
        frames = [_window(self.binance_intraday_frame(s, interval), start, end) for s in symbols]
        return self.write_ohlcv(pd.concat(frames), "binance", interval)

    def coingecko_market(self, symbols: Sequence[str], start: Any = None, end: Any = None) -> int:
        frames = [_window(self.coingecko_frame(s), start, end) for s in symbols]
        return self.write_market(pd.concat(frames))

    def write_ohlcv(self, frame: pd.DataFrame, source_api: str, interval: str | None) -> int:
        """COPY bronze-shaped OHLCV rows (any source) into bronze.raw_crypto_prices as one batch."""
        batch = self._begin(source_api, "ohlcv", frame, interval)
        frame = frame.assign(_batch_id=str(batch))
        self._copy("bronze.raw_crypto_prices", _OHLCV_COLUMNS, frame)
        self._finish(batch, len(frame))
        return len(frame)

    def write_market(self, frame: pd.DataFrame) -> int:
        """COPY bronze-shaped market rows into bronze.raw_market_data as one batch."""
        source = str(frame["source_api"].iloc[0]) if len(frame) else "coingecko"
        batch = self._begin(source, "market", frame, None)
        frame = frame.assign(_batch_id=str(batch))
        self._copy("bronze.raw_market_data", _MARKET_COLUMNS, frame)
        self._finish(batch, len(frame))
        return len(frame)

    def _copy(self, table: str, columns: Sequence[str], frame: pd.DataFrame) -> None:
        buffer = io.StringIO()
        out = frame.loc[:, list(columns)].copy()
        out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
        out.to_csv(buffer, index=False, header=False, na_rep="", float_format="%.17g")
        buffer.seek(0)
        column_sql = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        statement = sql.SQL("copy {} ({}) from stdin with (format csv)").format(
            sql.SQL(table), column_sql
        )
        with psycopg.connect(self.url) as conn, conn.cursor() as cur:
            with cur.copy(statement) as copy:
                copy.write(buffer.getvalue())

    def _begin(
        self, source: str, dataset: str, frame: pd.DataFrame, interval: str | None
    ) -> uuid.UUID:
        batch = uuid.uuid4()
        self.batches.append(batch)
        stamps = frame["timestamp"]
        with psycopg.connect(self.url) as conn:
            conn.execute(
                """
                insert into bronze.ingestion_audit
                    (batch_id, source_api, dataset, symbols, interval, window_start, window_end,
                     rows_fetched, status)
                values (%s, %s, %s, %s, %s, %s, %s, %s, 'running')
                """,
                (
                    batch, source, dataset, sorted(frame["symbol"].unique().tolist()), interval,
                    stamps.min() if len(stamps) else None, stamps.max() if len(stamps) else None,
                    len(frame),
                ),
            )  # fmt: skip
        return batch

    def _finish(self, batch: uuid.UUID, rows: int) -> None:
        with psycopg.connect(self.url) as conn:
            conn.execute(
                """
                update bronze.ingestion_audit
                set rows_inserted = %s, status = 'succeeded', finished_at = now()
                where batch_id = %s
                """,
                (rows, batch),
            )


@dataclass
class Dbt:
    """dbt against one test database, with this session's own target folder.

    `extra_args` go on every command (the scheduled handle's --vars).
    """

    url: str
    target_path: Path
    extra_args: tuple[str, ...] = ()

    def __call__(self, *args: str) -> Any:
        """Run `dbt <args>`; raises TransformError / DataQualityError on failure."""
        return run_dbt(
            [*args, "--target-path", str(self.target_path), *self.extra_args], url=self.url
        )

    def build(self, *args: str) -> Any:
        """`dbt build <args>`; with no args, the silver layer (`--selector silver`)."""
        return self("build", *(args or ("--selector", "silver")))

    def rows(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def frame(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with psycopg.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(query, params)  # type: ignore[arg-type]
            columns = [d.name for d in cur.description or []]
            return pd.DataFrame(cur.fetchall(), columns=columns)


@pytest.fixture(scope="session")
def dbt_target_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test session's dbt target folder (never shared with another process)."""
    return tmp_path_factory.mktemp("dbt_target")


@pytest.fixture(scope="session")
def fresh_database(_template_database: str) -> Iterator[Callable[[], str]]:
    """Factory: URL of a new migrated database (universe published); all dropped at the end."""
    import os

    server = os.environ["CRYPTO_DATABASE_URL"]
    created: list[str] = []

    def make() -> str:
        name = f"crypto_dbt_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(_template_database)
                )
            )
        created.append(name)
        return url_for_database(server, name)

    yield make
    with psycopg.connect(server, autocommit=True) as admin:
        for name in created:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def copy_database() -> Iterator[Callable[[str], str]]:
    """Factory: URL of a new database copied from the one at `url` (`create database ...
    template`), all dropped at session end. Everything is copied as it is, row versions (xmin)
    included, so a test can tell which rows its own build rewrote. The source must be one no
    test writes to any more: its remaining connections (idle ones dbt left) are closed first,
    as PostgreSQL copies only a database nobody is connected to."""
    import os

    server = os.environ["CRYPTO_DATABASE_URL"]
    created: list[str] = []

    def copy(url: str) -> str:
        source = conninfo_to_dict(url)["dbname"]
        name = f"crypto_dbt_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid()",
                (source,),
            )
            admin.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(str(source))
                )
            )
        created.append(name)
        return url_for_database(server, name)

    yield copy
    with psycopg.connect(server, autocommit=True) as admin:
        for name in created:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def bronze_loader(shared_data: Path) -> Callable[[str], BronzeLoader]:
    """Factory: a BronzeLoader for a database URL."""
    return lambda url: BronzeLoader(url, shared_data)


@pytest.fixture(scope="session")
def dbt_factory(dbt_target_path: Path) -> Callable[[str], Dbt]:
    """Factory: a Dbt handle for a database URL."""
    return lambda url: Dbt(url, dbt_target_path)


@pytest.fixture(scope="session")
def scheduled_dbt_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Dbt]:
    """Factory: a Dbt handle that runs dbt as the scheduled builds do (SCHEDULED_DBT_VARS).

    Its own target folder: dbt re-parses the whole project when the vars differ from the last
    parse in a folder, so sharing one with the plain handle would re-parse on every switch.
    """
    target = tmp_path_factory.mktemp("dbt_target_scheduled")
    return lambda url: Dbt(url, target, tuple(vars_args(SCHEDULED_DBT_VARS)))


@pytest.fixture(scope="module")
def daily_bronze_url(
    fresh_database: Callable[[], str], bronze_loader: Callable[[str], BronzeLoader]
) -> str:
    """A database holding the full daily Binance history of DAILY_SYMBOLS and their CoinGecko
    market data (where the export exists); nothing built. Read-only by convention: tests that
    write bronze make their own with fresh_database()."""
    url = fresh_database()
    loader = bronze_loader(url)
    loader.binance_daily(DAILY_SYMBOLS)
    loader.coingecko_market(DAILY_SYMBOLS)
    return url
