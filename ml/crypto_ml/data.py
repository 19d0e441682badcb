"""The one module of crypto_ml that reads the warehouse, and it reads gold only.

Why one module: what the models may see is then written in one place. Gold is the contract
(tested, documented by dbt); bronze and silver can change shape without breaking a model, and a
reviewer can check here that nothing reads past gold. Results are written to the analytics
schemas by their own packages (crypto_ml/forecasting/store.py writes schema `ml`,
crypto_ml/portfolio/store.py schema `portfolio`).

Every reader returns a DataFrame with the columns it documents, dates as tz-naive midnight
timestamps (a UTC day), so the numeric code never handles timezones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from crypto_analytics.warehouse import connect, database_url
from crypto_ml.errors import NotEnoughData

log = logging.getLogger(__name__)

#: Columns of gold.token_daily_features the forecasting models read.
FEATURE_COLUMNS: tuple[str, ...] = (
    "symbol", "date", "category", "is_stablecoin", "close", "log_return", "gap_days",
    "volatility_30d", "volatility_90d", "drawdown", "sma_20", "sma_50", "sma_200", "rsi_14",
    "macd_histogram", "bb_percent_b", "bb_bandwidth", "market_cap",
)  # fmt: skip


def _read(url: str | None, query: sql.Composed | sql.SQL, params: Sequence[Any]) -> pd.DataFrame:
    with connect(url or database_url()) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        columns = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


def _as_days(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column])
    return frame


def read_daily_features(
    url: str | None = None,
    symbols: Sequence[str] | None = None,
    until: date | None = None,
) -> pd.DataFrame:
    """gold.token_daily_features (FEATURE_COLUMNS), optionally for some symbols and up to a day."""
    query = sql.SQL("select {} from gold.token_daily_features where true").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in FEATURE_COLUMNS)
    )
    params: list[Any] = []
    if symbols:
        query += sql.SQL(" and symbol = any(%s)")
        params.append(list(symbols))
    if until is not None:
        query += sql.SQL(" and date <= %s")
        params.append(until)
    query += sql.SQL(" order by symbol, date")
    try:
        frame = _read(url, query, params)
    except psycopg.errors.UndefinedTable as exc:
        raise NotEnoughData(
            "gold.token_daily_features does not exist: build gold first "
            "(`crypto-analytics dbt build`, or `make demo` for the offline market)"
        ) from exc
    if frame.empty and (symbols or until is not None):
        _explain_no_rows(url, symbols, until)
    numeric = [c for c in FEATURE_COLUMNS if c not in ("symbol", "date", "category")]
    frame = frame.astype({c: "float64" for c in numeric if c != "is_stablecoin"})
    frame["is_stablecoin"] = frame["is_stablecoin"].astype(bool)
    log.info("read %d feature rows for %d tokens", len(frame), frame["symbol"].nunique())
    return _as_days(frame, "date")


def _explain_no_rows(url: str | None, symbols: Sequence[str] | None, until: date | None) -> None:
    """A filtered read found nothing: say what gold does hold (an empty mart is the caller's
    message: gold not built)."""
    held = _read(
        url,
        sql.SQL(
            "select count(distinct symbol) as tokens, min(date) as first, max(date) as last"
            " from gold.token_daily_features where symbol = any(%s) or %s"
        ),
        [list(symbols or []), not symbols],
    ).iloc[0]
    if not held["tokens"]:
        if symbols:
            raise NotEnoughData(f"gold.token_daily_features has no rows for {list(symbols)}")
        return
    scope = f" for {list(symbols)}" if symbols else ""
    raise NotEnoughData(
        f"gold.token_daily_features has no rows{scope} up to {until}: it holds "
        f"{held['tokens']} token(s) from {held['first']} to {held['last']}"
    )


def read_price_predictions(
    model: str, target_from: date, target_to: date, url: str | None = None
) -> pd.DataFrame:
    """gold.price_predictions of one model whose target day is in [target_from, target_to],
    joined with the realised close of that day from gold.token_daily_features (null when the
    day has no close yet). Columns: symbol, as_of_date, horizon_days, target_date, point,
    model_version, realised_close."""
    query = sql.SQL(
        """
        select p.symbol, p.as_of_date, p.horizon_days, p.target_date, p.point, p.model_version,
               f.close as realised_close
        from gold.price_predictions as p
        left join gold.token_daily_features as f
            on f.symbol = p.symbol and f.date = p.target_date
        where p.model = %s and p.target_date between %s and %s
        order by p.symbol, p.target_date, p.horizon_days
        """
    )
    frame = _read(url, query, [model, target_from, target_to])
    frame = frame.astype({"point": "float64", "realised_close": "float64"})
    return _as_days(frame, "as_of_date", "target_date")


# --- portfolio (crypto_ml.portfolio) ---------------------------------------------------------------


def _pivot_daily(
    column: str,
    symbols: Sequence[str] | None,
    start: date | None,
    before: date,
    url: str | None,
) -> pd.DataFrame:
    """One column of gold.daily_crypto_metrics as a frame (rows days, columns symbols), complete
    UTC days before `before` only: the still-trading day (is_complete_day = false) would be a
    partial close. Missing days stay NaN: gaps are never filled here."""
    query = sql.SQL(
        "select date, symbol, {} as value from gold.daily_crypto_metrics "
        "where is_complete_day and date < %s"
    ).format(sql.Identifier(column))
    params: list[Any] = [before]
    if start is not None:
        query += sql.SQL(" and date >= %s")
        params.append(start)
    if symbols:
        query += sql.SQL(" and symbol = any(%s)")
        params.append(list(symbols))
    frame = _read(url, query, params)
    if frame.empty:
        return pd.DataFrame(columns=list(symbols or []), dtype="float64")
    frame = _as_days(frame, "date").astype({"value": "float64"})
    wide = frame.pivot(index="date", columns="symbol", values="value").sort_index()
    wide.columns.name = None
    return wide


def read_daily_returns(
    kind: str,
    before: date,
    start: date | None = None,
    symbols: Sequence[str] | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Daily returns from gold.daily_crypto_metrics, `kind` simple (daily_return) or log
    (log_return), dated in [start, before); NaN across gaps (gold never spans a missing day)."""
    column = {"simple": "daily_return", "log": "log_return"}.get(kind)
    if column is None:
        raise ValueError(f"return kind {kind!r}: choose simple or log")
    return _pivot_daily(column, symbols, start, before, url)


def read_daily_closes(
    before: date,
    start: date | None = None,
    symbols: Sequence[str] | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Daily closes from gold.daily_crypto_metrics dated in [start, before) (backtest prices,
    holdings valuation)."""
    return _pivot_daily("close", symbols, start, before, url)


def read_champion_forecasts(
    before: date, horizon_days: int, url: str | None = None
) -> pd.DataFrame:
    """The champion's newest forecasts made before `before` for one horizon, from
    gold.price_predictions: index symbol, columns as_of_date, horizon_days, point, model,
    model_version. Raises LookupError with what to run when the view does not exist yet."""
    import psycopg

    query = sql.SQL(
        """
        select symbol, as_of_date, horizon_days, point, model, model_version
        from gold.price_predictions
        where is_champion and horizon_days = %s
          and as_of_date = (
              select max(as_of_date) from gold.price_predictions
              where is_champion and horizon_days = %s and as_of_date < %s
          )
        order by symbol
        """
    )
    try:
        frame = _read(url, query, [horizon_days, horizon_days, before])
    except psycopg.errors.UndefinedTable as exc:
        raise LookupError(
            "gold.price_predictions does not exist yet: run the forecasting pipeline and "
            "`crypto-analytics dbt build --select price_predictions` first"
        ) from exc
    frame = frame.astype({"point": "float64"})
    return _as_days(frame, "as_of_date").set_index("symbol")
