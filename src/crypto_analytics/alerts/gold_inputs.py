"""The only module that reads rule inputs, and it reads gold only.

Why one reader: every rule's contract with its upstream table (names, columns, units) is written
here once, and a table that does not exist yet (the portfolio or forecasting work not run in this
warehouse) becomes `InputMissing` with the command that builds it, so the engine reports
"no data: run X" for that rule and keeps evaluating the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from crypto_analytics.alerts.price import Move, PricePoint
from crypto_analytics.errors import CryptoAnalyticsError

GOLD_BUILD = "build gold: `crypto-analytics dbt build` or the gold_aggregation DAG"
ALERT_VIEWS = "build the alert views: `crypto-analytics dbt build --select gold.alerts`"


class InputMissing(CryptoAnalyticsError):
    """A rule's gold input does not exist (yet) in this warehouse; the message says what builds it."""

    def __init__(self, relation: str, hint: str) -> None:
        super().__init__(f"no data: {relation} does not exist; {hint}")
        self.relation = relation


@dataclass(frozen=True)
class GoldRelation:
    """A gold table or view a rule reads, and what to run when it is missing."""

    name: str
    hint: str


DAILY_METRICS = GoldRelation("gold.daily_crypto_metrics", GOLD_BUILD)
DATA_QUALITY = GoldRelation("gold.data_quality_summary", GOLD_BUILD)
STREAM_HEARTBEAT = GoldRelation(
    "gold.stream_heartbeat", f"{ALERT_VIEWS}, then start `crypto-analytics stream`"
)
REBALANCING = GoldRelation(
    "gold.rebalancing_recommendations",
    "run the portfolio_optimization DAG (or `crypto-analytics portfolio optimize` then "
    "`crypto-analytics portfolio report`)",
)
MODEL_DRIFT = GoldRelation(
    "gold.model_drift", "run the ml_inference DAG (or `crypto-analytics ml predict`)"
)


def _day_end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


class GoldInputs:
    """Reads on one (autocommit) connection; each method checks its relation exists first.

    `universe` is every token symbol: what a rule without `symbols` watches. Latest rows are
    found per token through gold's (symbol, date) index, never by sorting the whole table."""

    def __init__(self, conn: psycopg.Connection, universe: list[str]) -> None:
        self.conn = conn
        self.universe = universe

    def require(self, relation: GoldRelation) -> None:
        row = self.conn.execute("select to_regclass(%s)", (relation.name,)).fetchone()
        if not row or row[0] is None:
            raise InputMissing(relation.name, relation.hint)

    def _rows(self, relation: GoldRelation, query: str, params: Any = None) -> list[tuple]:
        self.require(relation)
        return self.conn.execute(query, params).fetchall()

    # --- prices -------------------------------------------------------------------------------

    _LATEST = """
        select s.symbol, l.date, l.close, l.at
        from unnest(%(symbols)s::text[]) as s(symbol)
        cross join lateral (
            select date, close,
                   least((date + 1)::timestamp at time zone 'UTC', _source_ingested_at) as at
            from gold.daily_crypto_metrics m
            where m.symbol = s.symbol
            order by date desc
            limit 1
        ) l
    """

    def latest_closes(self, symbols: list[str]) -> dict[str, PricePoint]:
        """Each token's newest daily close (today's close so far while the day trades). Its time is
        the day's close, or when its newest candle landed if the day is still trading."""
        rows = self._rows(DAILY_METRICS, self._LATEST, {"symbols": symbols or self.universe})
        return {symbol: PricePoint(float(close), at) for symbol, _, close, at in rows}

    def daily_moves(self, symbols: list[str], days: int) -> dict[str, Move | None]:
        """Per token: its newest daily close against the close `days` calendar days earlier
        (None when that day is missing: a gap is never bridged)."""
        rows = self._rows(
            DAILY_METRICS,
            f"""
            with latest as ({self._LATEST})
            select l.symbol, l.close, l.at, s.date, s.close
            from latest l
            left join gold.daily_crypto_metrics s
              on s.symbol = l.symbol and s.date = l.date - %(days)s
            """,  # noqa: S608 - a constant query, values bound
            {"symbols": symbols or self.universe, "days": days},
        )
        moves: dict[str, Move | None] = {}
        for symbol, close, at, start_day, start_close in rows:
            if start_day is None:
                moves[symbol] = None
                continue
            moves[symbol] = Move(
                start=PricePoint(float(start_close), _day_end(start_day)),
                end=PricePoint(float(close), at),
            )
        return moves

    def daily_log_returns(self, symbols: list[str], days: int) -> pd.DataFrame:
        """Log returns of the last `days` calendar days up to the newest day in gold, one column
        per token, every calendar day a row (NaN where gold has none: gaps stay gaps)."""
        rows = self._rows(
            DAILY_METRICS,
            """
            with newest as (select max(date) as day from gold.daily_crypto_metrics)
            select m.date, m.symbol, m.log_return
            from gold.daily_crypto_metrics m, newest
            where m.date > newest.day - %(days)s and m.symbol = any(%(symbols)s::text[])
            """,
            {"symbols": symbols or self.universe, "days": days},
        )
        if not rows:
            return pd.DataFrame()
        frame = pd.DataFrame(rows, columns=["date", "symbol", "log_return"])
        frame["log_return"] = frame["log_return"].astype("float64")
        wide = frame.pivot(index="date", columns="symbol", values="log_return")
        wide.index = pd.DatetimeIndex(wide.index)
        calendar = pd.date_range(wide.index.max() - pd.Timedelta(days=days - 1), wide.index.max())
        return wide.reindex(calendar).sort_index(axis=1)

    # --- freshness ------------------------------------------------------------------------------

    def candle_freshness(self) -> dict[str, datetime | None]:
        """Each token's newest candle close time as of the last gold build."""
        rows = self._rows(
            DATA_QUALITY, "select symbol, latest_close_at from gold.data_quality_summary"
        )
        return dict(rows)

    def stream_freshness(self) -> dict[str, datetime | None]:
        """Each stream's newest landed candle close (None: it never landed one)."""
        rows = self._rows(
            STREAM_HEARTBEAT, "select stream_id, last_candle_close_at from gold.stream_heartbeat"
        )
        return dict(rows)

    # --- portfolio and models -----------------------------------------------------------------

    def columns(self, relation: GoldRelation) -> set[str]:
        """The relation's column names (to name what an upstream contract change removed)."""
        self.require(relation)
        schema, _, table = relation.name.partition(".")
        rows = self.conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (schema, table),
        ).fetchall()
        return {name for (name,) in rows}

    def newest(
        self, relation: GoldRelation, columns: list[str], key: list[str], order: str
    ) -> pd.DataFrame:
        """Named columns of each `key` group's newest row by `order` (e.g. the latest drift check
        per model and horizon); InputMissing names the columns an upstream change removed."""
        present = self.columns(relation)
        absent = [c for c in columns if c not in present]
        if absent:
            raise InputMissing(
                f"{relation.name} column(s) {', '.join(absent)}",
                f"its contract changed (it has: {', '.join(sorted(present))})",
            )
        keys = sql.SQL(", ").join(map(sql.Identifier, key))
        query = sql.SQL(
            "select distinct on ({keys}) {cols} from {rel} order by {keys}, {o} desc"
        ).format(
            keys=keys,
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
            rel=sql.Identifier(*relation.name.split(".")),
            o=sql.Identifier(order),
        )
        rows = self.conn.execute(query).fetchall()
        return pd.DataFrame(rows, columns=columns)
