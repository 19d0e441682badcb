"""Every read the dashboard makes: gold only, as the read-only role, through the serving cache.

Why one module: what the dashboard may see is written in one place. Each function is one query
on one gold relation, returns a DataFrame with the columns its SQL names, and is cached for
`dashboard.cache_ttl_seconds` in Redis or in-process (crypto_analytics.serving_cache); the gold
DAG's last task refreshes the cache. The connection logs in as `dashboard_reader`, which can
read gold and nothing else, in read-only transactions: this module could not write if it tried.

Failures become the few errors a page can explain: the warehouse is unreachable, a relation is
not built yet (with the command that builds it), the role may not read it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.contract import DASHBOARD_READER_ROLE
from crypto_analytics.dashboard_reader import reader_conninfo
from crypto_analytics.errors import CryptoAnalyticsError
from crypto_analytics.serving_cache import ServingCache, serving_cache

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5

#: How each relation gets built, for "not built yet" messages. The analytics relations are gold
#: views over the schemas the Python jobs write: dbt creates the view, the job fills it.
DBT_GOLD = "`crypto-analytics dbt build --select gold` (or `make demo` for the offline demo)"
FORECASTING = (
    "`crypto-analytics dbt build --select gold` (it creates the views over schema ml); "
    "`crypto-analytics ml train` and `ml predict` fill them"
)
PORTFOLIO = (
    "`crypto-analytics dbt build --select gold` (it creates the views over schema portfolio); "
    "`crypto-analytics portfolio optimize` fills them"
)
ALERTS = (
    "`crypto-analytics dbt build --select gold` (it creates the views over schema alerts); "
    "`crypto-analytics alerts evaluate` (or the stream) fills them"
)
STREAM = (
    "`crypto-analytics dbt build --select gold` (it creates the view over schema stream); "
    "`crypto-analytics stream` fills it"
)


class DashboardError(CryptoAnalyticsError):
    """Something a page explains to its reader instead of showing a traceback."""


class WarehouseUnreachable(DashboardError):
    """The dashboard cannot log in to the warehouse (down, wrong URL, role or password)."""


class NotBuilt(DashboardError):
    """A gold relation does not exist yet (or predates this dashboard: a column it reads is
    missing); `build` says what creates it."""

    def __init__(self, relation: str, build: str, state: str = "is not built yet") -> None:
        super().__init__(f"{relation} {state}: run {build}")
        self.relation = relation
        self.build = build
        self.state = state


class NotReadable(DashboardError):
    """The relation exists but the reader role may not read it (grants missing)."""


class NoData(DashboardError):
    """A relation exists but holds nothing for what was asked."""


@dataclass(frozen=True)
class Reader:
    """Where the dashboard reads and how it caches: built once per process from the settings."""

    conninfo: str
    cache: ServingCache
    described: str


def _describe(conninfo: str) -> str:
    """user@host:port/db for messages, without the password."""
    params = conninfo_to_dict(conninfo)
    return (
        f"{params.get('user')}@{params.get('host', 'localhost')}:{params.get('port', 5432)}"
        f"/{params.get('dbname')}"
    )


_readers: dict[tuple[object, ...], Reader] = {}


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


def reader(settings: Settings | None = None) -> Reader:
    """The process's Reader for the current settings (rebuilt when what it depends on changes,
    e.g. a test pointing CRYPTO_DATABASE_URL elsewhere)."""
    settings = settings or get_settings()
    identity = (
        _secret(settings.database_url),
        _secret(settings.dashboard_db_password),
        _secret(settings.redis_url),
        settings.dashboard.cache_ttl_seconds,
        str(settings.data_path),
    )
    known = _readers.get(identity)
    if known is not None:
        return known
    try:
        conninfo = reader_conninfo(settings)
    except CryptoAnalyticsError as exc:  # a malformed CRYPTO_DATABASE_URL
        raise WarehouseUnreachable(str(exc)) from exc
    described = _describe(conninfo)
    namespace = hashlib.sha256(described.encode()).hexdigest()[:16]
    current = Reader(conninfo, serving_cache(namespace, settings), described)
    _readers.clear()  # one warehouse per process at a time
    _readers[identity] = current
    return current


def _connect_failure(exc: psycopg.OperationalError, where: str) -> WarehouseUnreachable:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "does not exist" in text and "role" in text:
        hint = "run `crypto-analytics db init` (it creates the role)"
    elif "password" in text:
        hint = (
            "set DASHBOARD_DB_PASSWORD (see config/secrets.env.example) and run "
            "`crypto-analytics db init` to give the role that password"
        )
    else:
        hint = "is PostgreSQL running, and CRYPTO_DATABASE_URL right?"
    return WarehouseUnreachable(f"cannot reach the warehouse as {where}: {text} ({hint})")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain numbers, text and times only: numeric (Decimal) -> float, json/arrays -> JSON
    text, so every frame caches as Arrow and shows in a table the same way."""
    for column in frame.columns:
        present = frame[column].dropna()
        if present.empty:
            continue
        if isinstance(present.iloc[0], Decimal):
            frame[column] = frame[column].astype(float)
        elif isinstance(present.iloc[0], dict | list):
            frame[column] = frame[column].map(
                lambda v: None if v is None else json.dumps(v, default=str)
            )
    return frame


def fetch(query: str, params: tuple[Any, ...], relation: str, build: str) -> pd.DataFrame:
    """Run one query as the reader role, uncached (the cached functions below call this)."""
    current = reader()
    try:
        with psycopg.connect(
            current.conninfo,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            options="-c TimeZone=UTC",
            autocommit=True,
        ) as conn:
            cursor = conn.execute(query, params)
            columns = [d.name for d in cursor.description or []]
            rows = cursor.fetchall()
    except pg_errors.UndefinedTable as exc:
        raise NotBuilt(relation, build) from exc
    except pg_errors.UndefinedColumn as exc:  # the dashboard was upgraded, gold not rebuilt yet
        raise NotBuilt(
            relation, build, "is older than this dashboard (a column is missing)"
        ) from exc
    except pg_errors.InsufficientPrivilege as exc:
        raise NotReadable(
            f"{DASHBOARD_READER_ROLE} may not read {relation}: run `crypto-analytics db init` "
            "(it grants SELECT on gold) and rebuild gold with the same user"
        ) from exc
    except psycopg.OperationalError as exc:
        raise _connect_failure(exc, current.described) from exc
    return _plain(pd.DataFrame.from_records(rows, columns=columns))


def _cached(
    name: str, query: str, params: tuple[Any, ...], relation: str, build: str
) -> pd.DataFrame:
    digest = hashlib.sha256(query.encode()).hexdigest()[:10]
    return reader().cache.get_or_compute(
        f"{name}:{digest}", params, lambda: fetch(query, params, relation, build)
    )


def require_rows(frame: pd.DataFrame, what: str, hint: str) -> pd.DataFrame:
    """The frame, or NoData saying what is missing and what to run."""
    if frame.empty:
        raise NoData(f"no {what} yet: {hint}")
    return frame


INGEST_HINT = (
    "ingest data (`crypto-analytics ingest`, or `make demo` for the offline demo), then "
    "`crypto-analytics dbt build`"
)


# --- prices -------------------------------------------------------------------------------


def market_tickers() -> pd.DataFrame:
    """Latest price, 24 h change, range and volume per token of the universe."""
    return _cached(
        "market_tickers",
        """
        select symbol, name, category, is_stablecoin, source_interval, price_at, price,
               reference_at, reference_price, change_24h, change_window_hours, high_24h,
               low_24h, volume_24h, quote_volume_24h, market_cap
        from gold.market_tickers
        order by category, symbol
        """,
        (),
        "gold.market_tickers",
        DBT_GOLD,
    )


def token_intervals() -> pd.DataFrame:
    """Per token: the candle intervals gold can chart, and the token's name and category."""
    return _cached(
        "token_intervals",
        """
        select symbol, name, category, is_stablecoin, coalesce(intervals, '') as intervals,
               freshness_status
        from gold.data_quality_summary
        order by symbol
        """,
        (),
        "gold.data_quality_summary",
        DBT_GOLD,
    )


def price_candles(symbol: str, interval: str, limit: int) -> pd.DataFrame:
    """The newest `limit` candles of one series with the session VWAP, oldest first."""
    return _cached(
        "price_candles",
        """
        select * from (
            select "timestamp", open, high, low, close, volume, vwap, has_gap, gap_candles,
                   is_outlier, quote_currency
            from gold.price_candles
            where symbol = %s and interval = %s
            order by "timestamp" desc
            limit %s
        ) as newest
        order by "timestamp"
        """,
        (symbol, interval, limit),
        "gold.price_candles",
        DBT_GOLD,
    )


def technical_candles(symbol: str, interval: str, limit: int) -> pd.DataFrame:
    """The newest `limit` candles of one series with every indicator, oldest first."""
    return _cached(
        "technical_candles",
        """
        select * from (
            select "timestamp", open, high, low, close, volume, has_gap, sma_20, sma_50,
                   sma_200, ema_12, ema_26, rsi_14, macd_line, macd_signal, macd_histogram,
                   bb_upper, bb_middle, bb_lower, bb_percent_b, bb_bandwidth
            from gold.technical_candles
            where symbol = %s and interval = %s
            order by "timestamp" desc
            limit %s
        ) as newest
        order by "timestamp"
        """,
        (symbol, interval, limit),
        "gold.technical_candles",
        DBT_GOLD,
    )


def support_resistance(symbol: str, interval: str) -> pd.DataFrame:
    """Support and resistance levels of one series, nearest the price first."""
    return _cached(
        "support_resistance",
        """
        select kind, rank_from_price, level_price, level_low, level_high, touches,
               first_touch_at, last_touch_at, distance, last_close, last_candle_at
        from gold.support_resistance_levels
        where symbol = %s and interval = %s
        order by kind, rank_from_price
        """,
        (symbol, interval),
        "gold.support_resistance_levels",
        DBT_GOLD,
    )


def daily_closes(symbols: tuple[str, ...], since: date) -> pd.DataFrame:
    """Daily close, return and market cap of some tokens since a day (long format)."""
    return _cached(
        "daily_closes",
        """
        select symbol, date, close, daily_return, log_return, market_cap, is_complete_day
        from gold.daily_crypto_metrics
        where symbol = any(%s) and date >= %s
        order by symbol, date
        """,
        (list(symbols), since),
        "gold.daily_crypto_metrics",
        DBT_GOLD,
    )


# --- correlation and categories ------------------------------------------------------------


def correlation_matrix(window_days: int) -> pd.DataFrame:
    return _cached(
        "correlation_matrix",
        """
        select symbol_a, symbol_b, correlation, n_observations, window_end_date
        from gold.correlation_matrix
        where window_days = %s
        """,
        (window_days,),
        "gold.correlation_matrix",
        DBT_GOLD,
    )


def correlation_network(window_days: int) -> pd.DataFrame:
    return _cached(
        "correlation_network",
        """
        select network.symbol, universe.category, network.n_peers, network.avg_correlation,
               network.avg_abs_correlation, network.n_strong_peers, network.strong_peer_share,
               network.max_correlation, network.most_correlated_peer
        from gold.correlation_network as network
        left join gold.data_quality_summary as universe on universe.symbol = network.symbol
        where network.window_days = %s
        order by network.symbol
        """,
        (window_days,),
        "gold.correlation_network",
        DBT_GOLD,
    )


def rolling_correlation(symbols: tuple[str, ...]) -> pd.DataFrame:
    """30-day rolling correlation of tokens against the anchors (BTC, ETH), both orientations
    folded so `anchor` is always BTC or ETH."""
    return _cached(
        "rolling_correlation",
        """
        select date, symbol_a as anchor, symbol_b as symbol, correlation_30d
        from gold.rolling_correlation
        where symbol_b = any(%s)
        union all
        select date, symbol_b as anchor, symbol_a as symbol, correlation_30d
        from gold.rolling_correlation
        where symbol_a = any(%s) and symbol_b in ('BTC', 'ETH') and symbol_a <> symbol_b
        order by anchor, symbol, date
        """,
        (list(symbols), list(symbols)),
        "gold.rolling_correlation",
        DBT_GOLD,
    )


def category_index() -> pd.DataFrame:
    return _cached(
        "category_index",
        """
        select category, date, index_level, index_return, volatility_30d, n_constituents,
               weighting_method
        from gold.category_metrics
        order by category, date
        """,
        (),
        "gold.category_metrics",
        DBT_GOLD,
    )


def category_performance() -> pd.DataFrame:
    """Per category: the index level on its latest day and the return over 1, 7, 30, 90 and 365
    days, each only when the index has a level exactly that many days earlier (a gap gives
    null, never a different window)."""
    return _cached(
        "category_performance",
        """
        with latest as (
            select distinct on (category) category, date, index_level, volatility_30d,
                   n_constituents, weighting_method
            from gold.category_metrics
            order by category, date desc
        )
        select latest.category, latest.date as as_of, latest.index_level,
               latest.volatility_30d, latest.n_constituents, latest.weighting_method,
               latest.index_level / d1.index_level - 1 as return_1d,
               latest.index_level / d7.index_level - 1 as return_7d,
               latest.index_level / d30.index_level - 1 as return_30d,
               latest.index_level / d90.index_level - 1 as return_90d,
               latest.index_level / d365.index_level - 1 as return_365d
        from latest
        left join gold.category_metrics d1
            on d1.category = latest.category and d1.date = latest.date - 1
        left join gold.category_metrics d7
            on d7.category = latest.category and d7.date = latest.date - 7
        left join gold.category_metrics d30
            on d30.category = latest.category and d30.date = latest.date - 30
        left join gold.category_metrics d90
            on d90.category = latest.category and d90.date = latest.date - 90
        left join gold.category_metrics d365
            on d365.category = latest.category and d365.date = latest.date - 365
        order by latest.category
        """,
        (),
        "gold.category_metrics",
        DBT_GOLD,
    )


def token_performance(days: int) -> pd.DataFrame:
    """Per token: its category, latest close and market cap, and the return over `days` days
    (null unless it has a close exactly that many days before its latest day)."""
    return _cached(
        "token_performance",
        """
        with latest as (
            select distinct on (symbol) symbol, date, close, market_cap
            from gold.daily_crypto_metrics
            order by symbol, date desc
        )
        select latest.symbol, universe.category, latest.date as as_of, latest.close,
               latest.market_cap, latest.close / earlier.close - 1 as period_return
        from latest
        join gold.data_quality_summary as universe on universe.symbol = latest.symbol
        left join gold.daily_crypto_metrics as earlier
            on earlier.symbol = latest.symbol and earlier.date = latest.date - %s
        order by universe.category, latest.symbol
        """,
        (days,),
        "gold.daily_crypto_metrics",
        DBT_GOLD,
    )


# --- forecasting ---------------------------------------------------------------------------


def forecast_symbols() -> pd.DataFrame:
    """Tokens and horizons gold has price forecasts for, with the newest as-of date."""
    return _cached(
        "forecast_symbols",
        """
        select symbol, horizon_days, max(as_of_date) as latest_as_of, count(*) as forecasts
        from gold.price_predictions
        group by symbol, horizon_days
        order by symbol, horizon_days
        """,
        (),
        "gold.price_predictions",
        FORECASTING,
    )


def price_predictions(symbol: str, since: date) -> pd.DataFrame:
    """Every model's forecasts of one token, all horizons, whose target day is `since` or later."""
    return _cached(
        "price_predictions",
        """
        select as_of_date, horizon_days, target_date, model, point, lower_80, upper_80,
               lower_95, upper_95, model_version, run_id, is_champion
        from gold.price_predictions
        where symbol = %s and target_date >= %s
        order by model, as_of_date, horizon_days
        """,
        (symbol, since),
        "gold.price_predictions",
        FORECASTING,
    )


def model_evaluation(symbol: str, horizon_days: int) -> pd.DataFrame:
    """The newest walk-forward metrics of every price model, all folds pooled (fold 0)."""
    return _cached(
        "model_evaluation",
        """
        select model, n_points, mase, mae, rmse, mape, directional_accuracy, coverage_80,
               coverage_95, width_80, width_95, interval_score_95, as_of_date, run_id
        from gold.model_evaluation
        where symbol = %s and horizon_days = %s and fold = 0 and qlike is null
          and as_of_date = (
              select max(as_of_date) from gold.model_evaluation
              where symbol = %s and horizon_days = %s and fold = 0
          )
        order by mase nulls last, model
        """,
        (symbol, horizon_days, symbol, horizon_days),
        "gold.model_evaluation",
        FORECASTING,
    )


def champion_decisions(limit: int) -> pd.DataFrame:
    return _cached(
        "champion_decisions",
        """
        select as_of_date, candidate_model, candidate_version, candidate_score, champion_model,
               champion_version, champion_score, naive_score, n_points, promoted, reason, run_id
        from gold.champion_decisions
        order by as_of_date desc
        limit %s
        """,
        (limit,),
        "gold.champion_decisions",
        FORECASTING,
    )


def feature_importance(horizon_days: int) -> pd.DataFrame:
    """The newest permutation importances for one horizon."""
    return _cached(
        "feature_importance",
        """
        select model, feature, importance_mean, importance_std, n_repeats, scoring, as_of_date,
               run_id
        from gold.feature_importance
        where horizon_days = %s
          and as_of_date = (
              select max(as_of_date) from gold.feature_importance where horizon_days = %s
          )
        order by importance_mean desc
        """,
        (horizon_days, horizon_days),
        "gold.feature_importance",
        FORECASTING,
    )


def model_drift() -> pd.DataFrame:
    return _cached(
        "model_drift",
        """
        select as_of_date, model, model_version, horizon_days, window_start, window_end,
               n_points, realised_mae, validation_mae, error_ratio, threshold, is_drift
        from gold.model_drift
        where as_of_date = (select max(as_of_date) from gold.model_drift)
        order by horizon_days
        """,
        (),
        "gold.model_drift",
        FORECASTING,
    )


# --- portfolio ------------------------------------------------------------------------------


def portfolio_run_dates() -> pd.DataFrame:
    return _cached(
        "portfolio_run_dates",
        "select distinct run_date from gold.portfolio_weights_optimized order by run_date desc",
        (),
        "gold.portfolio_weights_optimized",
        PORTFOLIO,
    )


def portfolio_weights(run_date: date) -> pd.DataFrame:
    return _cached(
        "portfolio_weights",
        """
        select strategy, symbol, category, weight, expected_return, volatility, sharpe, sortino,
               max_drawdown, var_confidence, var_historical, cvar_historical, var_monte_carlo,
               cvar_monte_carlo, is_fallback, note
        from gold.portfolio_weights_optimized
        where run_date = %s
        order by strategy, weight desc
        """,
        (run_date,),
        "gold.portfolio_weights_optimized",
        PORTFOLIO,
    )


def efficient_frontier(run_date: date) -> pd.DataFrame:
    return _cached(
        "efficient_frontier",
        """
        select point, expected_return, volatility, sharpe, risk_free_rate, weights::text as weights
        from gold.efficient_frontier
        where run_date = %s
        order by point
        """,
        (run_date,),
        "gold.efficient_frontier",
        PORTFOLIO,
    )


def monte_carlo_portfolios(run_date: date) -> pd.DataFrame:
    return _cached(
        "monte_carlo_portfolios",
        """
        select expected_return, volatility, sharpe
        from gold.monte_carlo_portfolios
        where run_date = %s
        """,
        (run_date,),
        "gold.monte_carlo_portfolios",
        PORTFOLIO,
    )


def portfolio_backtest(run_date: date) -> pd.DataFrame:
    return _cached(
        "portfolio_backtest",
        """
        select strategy, date, equity, drawdown, rebalanced
        from gold.portfolio_backtest
        where run_date = %s
        order by strategy, date
        """,
        (run_date,),
        "gold.portfolio_backtest",
        PORTFOLIO,
    )


def portfolio_backtest_summary(run_date: date) -> pd.DataFrame:
    return _cached(
        "portfolio_backtest_summary",
        """
        select strategy, start_date, end_date, total_return, cagr, volatility, sharpe, sortino,
               max_drawdown, rebalances, turnover, costs
        from gold.portfolio_backtest_summary
        where run_date = %s
        order by sharpe desc nulls last
        """,
        (run_date,),
        "gold.portfolio_backtest_summary",
        PORTFOLIO,
    )


def rebalancing_recommendations(run_date: date) -> pd.DataFrame:
    return _cached(
        "rebalancing_recommendations",
        """
        select symbol, target_strategy, current_weight, target_weight, drift, band, action,
               trade_weight, price, trade_value, trade_quantity, portfolio_value, estimated_cost
        from gold.rebalancing_recommendations
        where run_date = %s
        order by abs(trade_weight) desc nulls last, symbol
        """,
        (run_date,),
        "gold.rebalancing_recommendations",
        PORTFOLIO,
    )


def latest_complete_day() -> date:
    """The newest UTC day gold has complete daily metrics for (NoData when none)."""
    frame = _cached(
        "latest_complete_day",
        "select max(date) as day from gold.daily_crypto_metrics where is_complete_day",
        (),
        "gold.daily_crypto_metrics",
        DBT_GOLD,
    )
    day = frame["day"].iloc[0] if not frame.empty else None
    if day is None or pd.isna(day):
        raise NoData(f"no complete day in gold.daily_crypto_metrics yet: {INGEST_HINT}")
    return pd.Timestamp(day).date()


def daily_returns(symbols: tuple[str, ...], since: date, kind: str) -> pd.DataFrame:
    """Daily returns of some tokens since a day, wide (rows: days as tz-naive midnight
    timestamps, columns: symbols), NaN where gold has no return (a gap: never filled)."""
    column = {"simple": "daily_return", "log": "log_return"}.get(kind)
    if column is None:
        raise ValueError(f"return kind {kind!r}: choose simple or log")
    long = _cached(
        f"daily_returns_{kind}",
        f"""
        select date, symbol, {column} as value
        from gold.daily_crypto_metrics
        where symbol = any(%s) and date >= %s and is_complete_day
        order by date, symbol
        """,
        (list(symbols), since),
        "gold.daily_crypto_metrics",
        DBT_GOLD,
    )
    if long.empty:
        return pd.DataFrame(columns=list(symbols), dtype=float)
    wide = long.pivot(index="date", columns="symbol", values="value")
    wide.index = pd.to_datetime(wide.index)
    return wide.astype(float)


# --- alerts ---------------------------------------------------------------------------------


def alert_history(since: date) -> pd.DataFrame:
    """Alert episodes fired since a day (gold.alerts), newest first."""
    return _cached(
        "alert_history",
        """
        select fired_at, resolved_at, status, severity, rule_id, rule_type, subject, message,
               value, threshold, duration_minutes, evaluated_by, notified, suppressed_reason,
               email_status, webhook_status, last_delivery_error
        from gold.alerts
        where fired_at >= %s
        order by fired_at desc
        """,
        (since,),
        "gold.alerts",
        ALERTS,
    )


def alert_rule_state() -> pd.DataFrame:
    """The current state of every (rule, subject) the alert engine evaluated."""
    return _cached(
        "alert_rule_state",
        """
        select rule_id, subject, rule_type, status, since, evaluated_at, observed_at, value,
               threshold, message, evaluated_by, last_notified_at
        from gold.alert_rule_state
        order by case status when 'firing' then 0 when 'error' then 1 when 'no_data' then 2
                 else 3 end, rule_id, subject
        """,
        (),
        "gold.alert_rule_state",
        ALERTS,
    )


# --- data health ---------------------------------------------------------------------------


def source_freshness() -> pd.DataFrame:
    return _cached(
        "source_freshness",
        """
        select source_api, dataset, coalesce(interval, '-') as interval, fetched_through,
               last_success_at, last_batch_at, last_status, last_error, age_hours,
               overdue_hours, freshness_status, batches_24h, failed_batches_24h,
               rows_inserted_24h, rows_quarantined_24h, late_after_hours, stale_after_hours
        from gold.source_freshness
        order by source_api, dataset, interval
        """,
        (),
        "gold.source_freshness",
        DBT_GOLD,
    )


def token_quality() -> pd.DataFrame:
    return _cached(
        "token_quality",
        """
        select symbol, category, status, intervals, candle_count, latest_close_at, age_hours,
               freshness_status, gap_count, missing_candles, outlier_count, quarantined_rows,
               latest_deviation_bp, max_abs_deviation_bp_30d
        from gold.data_quality_summary
        order by symbol
        """,
        (),
        "gold.data_quality_summary",
        DBT_GOLD,
    )


def quarantine_reasons() -> pd.DataFrame:
    return _cached(
        "quarantine_reasons",
        """
        select source_api, dataset, reason_kind, quarantined_rows, batches, symbols,
               last_quarantined_at, example_reason
        from gold.quarantine_reasons
        order by quarantined_rows desc
        """,
        (),
        "gold.quarantine_reasons",
        DBT_GOLD,
    )


def recent_batches(limit: int) -> pd.DataFrame:
    return _cached(
        "recent_batches",
        """
        select batch_id::text as batch_id, started_at, source_api, dataset, interval, symbols,
               status, rows_fetched, rows_inserted, rows_duplicate, rows_quarantined,
               duration_seconds, error
        from gold.ingestion_batches
        order by started_at desc
        limit %s
        """,
        (limit,),
        "gold.ingestion_batches",
        DBT_GOLD,
    )


def recent_gaps(limit: int) -> pd.DataFrame:
    return _cached(
        "recent_gaps",
        """
        select symbol, interval, gap_start, gap_end, missing_candles, resumed_from_source
        from gold.candle_gaps
        order by gap_end desc
        limit %s
        """,
        (limit,),
        "gold.candle_gaps",
        DBT_GOLD,
    )


def dbt_test_results() -> pd.DataFrame:
    return _cached(
        "dbt_test_results",
        """
        select status, test_type, tested_node, column_name, test_name, failures, message,
               execution_seconds, last_run_at
        from gold.dbt_test_results
        order by case status when 'error' then 0 when 'fail' then 1 when 'warn' then 2
                 when 'skipped' then 3 else 4 end, tested_node, test_name
        """,
        (),
        "gold.dbt_test_results",
        DBT_GOLD,
    )


def latest_alerts(limit: int) -> pd.DataFrame:
    """The newest alert episodes (gold.alerts, the alert engine's history with state)."""
    return _cached(
        "latest_alerts",
        """
        select fired_at, severity, status, rule_id, subject, message, resolved_at
        from gold.alerts
        order by fired_at desc
        limit %s
        """,
        (limit,),
        "gold.alerts",
        ALERTS,
    )


def stream_heartbeat() -> pd.DataFrame:
    return _cached(
        "stream_heartbeat",
        """
        select stream_id, feed, source_api, interval, health, status, connected_since,
               last_message_at, seconds_since_last_message, last_candle_close_at,
               seconds_since_last_candle_close, last_candle_lag_seconds, candles_landed,
               duplicate_candles, malformed_messages, reconnects, consecutive_failures,
               last_error, updated_at
        from gold.stream_heartbeat
        order by stream_id
        """,
        (),
        "gold.stream_heartbeat",
        STREAM,
    )
