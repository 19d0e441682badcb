"""Reads and writes the `portfolio` schema (src/crypto_analytics/migrations/0005_portfolio_schema.sql).

Why here and not in crypto_ml.data: data.py reads gold, the only layer models may read; this
module keeps the portfolio package's own results, which the DAG's steps hand to each other through
the warehouse (XCom carries only the run date). Every writer replaces the run date's rows of its
tables inside the caller's transaction, so a rerun leaves the same rows, never duplicates, and a
failed step leaves the previous state whole. Recomputing a run's inputs (`save_run`) deletes the
run row, and with it (on delete cascade) everything derived from the old inputs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from crypto_analytics.config import PortfolioConfig, Token
from crypto_ml.errors import NotEnoughData
from crypto_ml.portfolio.backtest import BacktestMetrics, BacktestResult
from crypto_ml.portfolio.inputs import EligibleReturns, Exclusion, PortfolioInputs
from crypto_ml.portfolio.optimizers import FrontierPoint
from crypto_ml.portfolio.rebalancing import RebalancePlan, TradeLine
from crypto_ml.portfolio.risk import RiskMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRecord:
    """A row of portfolio.runs."""

    run_date: date
    window_start: date
    window_end: date
    return_kind: str
    expected_returns_method: str
    covariance_method: str
    risk_free_rate: float
    periods_per_year: int
    observations: int
    dates_dropped: int
    settings: dict[str, Any]
    report_path: str | None
    email_status: str | None

    @property
    def config(self) -> PortfolioConfig:
        """The portfolio settings the run was made with (not today's)."""
        return PortfolioConfig.model_validate(self.settings)


@dataclass(frozen=True)
class StrategyResult:
    strategy: str
    weights: pd.Series
    metrics: RiskMetrics
    is_fallback: bool
    note: str | None


@dataclass(frozen=True)
class MonteCarloSummary:
    portfolios: int
    dirichlet_alpha: float
    seed: int
    best_sharpe: float | None
    max_volatility: float


def _copy(
    conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple]
) -> int:
    schema, name = table.split(".")
    statement = sql.SQL("copy {}.{} ({}) from stdin").format(
        sql.Identifier(schema),
        sql.Identifier(name),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    count = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _delete(conn: psycopg.Connection, table: str, run_date: date) -> None:
    schema, name = table.split(".")
    conn.execute(
        sql.SQL("delete from {}.{} where run_date = %s").format(
            sql.Identifier(schema), sql.Identifier(name)
        ),
        (run_date,),
    )


def _stamp(conn: psycopg.Connection, run_date: date, column: str) -> None:
    conn.execute(
        sql.SQL("update portfolio.runs set {} = now() where run_date = %s").format(
            sql.Identifier(column)
        ),
        (run_date,),
    )


def _float(value: float | None) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


# --- step 1: the run and its returns ------------------------------------------------------------


def save_run(
    conn: psycopg.Connection,
    run_date: date,
    config: PortfolioConfig,
    candidates: Sequence[Token],
    eligible: EligibleReturns,
    periods_per_year: int,
) -> None:
    """Replace the run (and everything derived from it) with new inputs."""
    returns = eligible.returns
    index = pd.DatetimeIndex(returns.index)
    reasons = {e.symbol: e.reason for e in eligible.exclusions}
    with conn.transaction():
        conn.execute("delete from portfolio.runs where run_date = %s", (run_date,))
        conn.execute(
            """
            insert into portfolio.runs (run_date, window_start, window_end, return_kind,
                expected_returns_method, covariance_method, risk_free_rate, periods_per_year,
                observations, dates_dropped, settings)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                run_date,
                index.min().date(),
                index.max().date(),
                config.return_kind,
                config.expected_returns,
                config.covariance,
                config.risk_free_rate,
                periods_per_year,
                len(returns),
                eligible.dates_dropped,
                json.dumps(config.model_dump(mode="json")),
            ),
        )
        _copy(
            conn,
            "portfolio.assets",
            [
                "run_date",
                "symbol",
                "category",
                "is_stablecoin",
                "is_eligible",
                "observations",
                "exclusion_reason",
            ],
            (
                (
                    run_date,
                    t.symbol,
                    t.category,
                    t.stablecoin,
                    t.symbol not in reasons,
                    eligible.observations.get(t.symbol),
                    reasons.get(t.symbol),
                )
                for t in candidates
            ),
        )
        long = returns.stack()
        _copy(
            conn,
            "portfolio.run_returns",
            ["run_date", "date", "symbol", "value"],
            (
                (run_date, day.date(), symbol, float(v))
                for day, symbol, v in zip(
                    long.index.get_level_values(0),
                    long.index.get_level_values(1),
                    long.to_numpy(),
                    strict=True,
                )
            ),
        )
    log.info(
        "portfolio run %s: %d eligible tokens x %d days stored",
        run_date,
        returns.shape[1],
        len(returns),
    )


def load_run(conn: psycopg.Connection, run_date: date) -> RunRecord:
    row = conn.execute(
        """
        select run_date, window_start, window_end, return_kind, expected_returns_method,
               covariance_method, risk_free_rate, periods_per_year, observations, dates_dropped,
               settings, report_path, email_status
        from portfolio.runs where run_date = %s
        """,
        (run_date,),
    ).fetchone()
    if row is None:
        raise NotEnoughData(
            f"no portfolio run for {run_date}: run `crypto-analytics portfolio optimize "
            f"--run-date {run_date}` first"
        )
    return RunRecord(*row)


def load_returns(conn: psycopg.Connection, run_date: date) -> pd.DataFrame:
    rows = conn.execute(
        "select date, symbol, value from portfolio.run_returns where run_date = %s",
        (run_date,),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["date", "symbol", "value"])
    wide = frame.pivot(index="date", columns="symbol", values="value").sort_index()
    wide.index = pd.to_datetime(wide.index)
    wide.columns.name = None
    return wide


def load_exclusions(conn: psycopg.Connection, run_date: date) -> tuple[Exclusion, ...]:
    rows = conn.execute(
        """
        select symbol, exclusion_reason from portfolio.assets
        where run_date = %s and not is_eligible order by symbol
        """,
        (run_date,),
    ).fetchall()
    return tuple(Exclusion(symbol, reason) for symbol, reason in rows)


def load_categories(conn: psycopg.Connection, run_date: date) -> dict[str, str]:
    rows = conn.execute(
        "select symbol, category from portfolio.assets where run_date = %s", (run_date,)
    ).fetchall()
    return dict(rows)


# --- step 2: expected returns and covariance -------------------------------------------------


def save_estimates(conn: psycopg.Connection, inputs: PortfolioInputs) -> None:
    run_date = inputs.run_date
    with conn.transaction():
        for table in ("portfolio.expected_returns", "portfolio.covariance"):
            _delete(conn, table, run_date)
        _copy(
            conn,
            "portfolio.expected_returns",
            ["run_date", "symbol", "expected_return"],
            ((run_date, s, float(v)) for s, v in inputs.expected_returns.items()),
        )
        long = inputs.covariance.stack()
        _copy(
            conn,
            "portfolio.covariance",
            ["run_date", "symbol_a", "symbol_b", "covariance"],
            (
                (run_date, a, b, float(v))
                for a, b, v in zip(
                    long.index.get_level_values(0),
                    long.index.get_level_values(1),
                    long.to_numpy(),
                    strict=True,
                )
            ),
        )
        # Tokens dropped at this step (no forecast) become exclusions of the run.
        dropped = [e for e in inputs.exclusions if e.symbol not in inputs.symbols]
        for exclusion in dropped:
            conn.execute(
                """
                update portfolio.assets set is_eligible = false, exclusion_reason = %s
                where run_date = %s and symbol = %s and is_eligible
                """,
                (exclusion.reason, run_date, exclusion.symbol),
            )
        _stamp(conn, run_date, "estimated_at")


def load_inputs(conn: psycopg.Connection, run_date: date) -> PortfolioInputs:
    """The run's exact inputs, as the optimisation used them."""
    run = load_run(conn, run_date)
    mu_rows = conn.execute(
        "select symbol, expected_return from portfolio.expected_returns "
        "where run_date = %s order by symbol",
        (run_date,),
    ).fetchall()
    if not mu_rows:
        raise NotEnoughData(
            f"portfolio run {run_date} has no expected returns yet: estimate its inputs first"
        )
    mu = pd.Series(dict(mu_rows), name="expected_return", dtype=float)
    cov_rows = conn.execute(
        "select symbol_a, symbol_b, covariance from portfolio.covariance where run_date = %s",
        (run_date,),
    ).fetchall()
    cov = (
        pd.DataFrame(cov_rows, columns=["a", "b", "v"])
        .pivot(index="a", columns="b", values="v")
        .loc[mu.index, mu.index]
    )
    cov.index.name = cov.columns.name = None
    returns = load_returns(conn, run_date)[list(mu.index)]
    return PortfolioInputs(
        run_date=run.run_date,
        returns=returns,
        expected_returns=mu,
        covariance=cov.astype(float),
        return_kind=run.return_kind,  # type: ignore[arg-type]
        expected_returns_method=run.expected_returns_method,  # type: ignore[arg-type]
        covariance_method=run.covariance_method,  # type: ignore[arg-type]
        risk_free_rate=run.risk_free_rate,
        window_start=run.window_start,
        window_end=run.window_end,
        dates_dropped=run.dates_dropped,
        exclusions=load_exclusions(conn, run_date),
        periods_per_year=run.periods_per_year,
    )


# --- step 3: Monte Carlo ----------------------------------------------------------------------


def save_monte_carlo(
    conn: psycopg.Connection, run_date: date, summary: MonteCarloSummary, sample: pd.DataFrame
) -> None:
    with conn.transaction():
        for table in ("portfolio.monte_carlo", "portfolio.monte_carlo_runs"):
            _delete(conn, table, run_date)
        conn.execute(
            """
            insert into portfolio.monte_carlo_runs
                (run_date, portfolios, dirichlet_alpha, seed, best_sharpe, max_volatility)
            values (%s, %s, %s, %s, %s, %s)
            """,
            (
                run_date,
                summary.portfolios,
                summary.dirichlet_alpha,
                summary.seed,
                _float(summary.best_sharpe),
                summary.max_volatility,
            ),
        )
        _copy(
            conn,
            "portfolio.monte_carlo",
            ["run_date", "sample_index", "expected_return", "volatility", "sharpe"],
            (
                (run_date, int(index), float(ret), float(vol), _float(sharpe))
                for index, ret, vol, sharpe in sample[
                    ["sample_index", "expected_return", "volatility", "sharpe"]
                ].to_numpy()
            ),
        )
        _stamp(conn, run_date, "simulated_at")


def load_monte_carlo(conn: psycopg.Connection, run_date: date) -> pd.DataFrame:
    rows = conn.execute(
        "select sample_index, expected_return, volatility, sharpe from portfolio.monte_carlo "
        "where run_date = %s order by sample_index",
        (run_date,),
    ).fetchall()
    return pd.DataFrame(rows, columns=["sample_index", "expected_return", "volatility", "sharpe"])


def load_monte_carlo_summary(conn: psycopg.Connection, run_date: date) -> MonteCarloSummary | None:
    row = conn.execute(
        "select portfolios, dirichlet_alpha, seed, best_sharpe, max_volatility "
        "from portfolio.monte_carlo_runs where run_date = %s",
        (run_date,),
    ).fetchone()
    return MonteCarloSummary(*row) if row else None


# --- step 4: strategies and the frontier ------------------------------------------------------


def save_optimisation(
    conn: psycopg.Connection,
    run_date: date,
    results: Sequence[StrategyResult],
    frontier: Sequence[FrontierPoint],
    frontier_metrics: Sequence[tuple[float, float, float | None]],
    var_confidence: float,
) -> None:
    with conn.transaction():
        for table in ("portfolio.weights", "portfolio.strategies", "portfolio.frontier"):
            _delete(conn, table, run_date)
        for result in results:
            m = result.metrics
            conn.execute(
                """
                insert into portfolio.strategies (run_date, strategy, expected_return, volatility,
                    sharpe, sortino, max_drawdown, var_confidence, var_historical, cvar_historical,
                    var_monte_carlo, cvar_monte_carlo, is_fallback, note)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    run_date,
                    result.strategy,
                    m.expected_return,
                    m.volatility,
                    _float(m.sharpe),
                    _float(m.sortino),
                    m.max_drawdown,
                    var_confidence,
                    m.var_historical,
                    m.cvar_historical,
                    _float(m.var_monte_carlo),
                    _float(m.cvar_monte_carlo),
                    result.is_fallback,
                    result.note,
                ),
            )
        _copy(
            conn,
            "portfolio.weights",
            ["run_date", "strategy", "symbol", "weight"],
            (
                (run_date, r.strategy, symbol, float(weight))
                for r in results
                for symbol, weight in r.weights.items()
            ),
        )
        _copy(
            conn,
            "portfolio.frontier",
            [
                "run_date",
                "point",
                "target_return",
                "expected_return",
                "volatility",
                "sharpe",
                "weights",
            ],
            (
                (
                    run_date,
                    p.point,
                    p.target_return,
                    ret,
                    vol,
                    _float(sharpe),
                    json.dumps({s: round(float(w), 10) for s, w in p.weights.items() if w > 0}),
                )
                for p, (ret, vol, sharpe) in zip(frontier, frontier_metrics, strict=True)
            ),
        )
        _stamp(conn, run_date, "optimised_at")


def load_strategies(conn: psycopg.Connection, run_date: date) -> list[StrategyResult]:
    rows = conn.execute(
        """
        select strategy, expected_return, volatility, sharpe, sortino, max_drawdown,
               var_historical, cvar_historical, var_monte_carlo, cvar_monte_carlo, is_fallback, note
        from portfolio.strategies where run_date = %s order by strategy
        """,
        (run_date,),
    ).fetchall()
    if not rows:
        raise NotEnoughData(f"portfolio run {run_date} has not been optimised yet")
    weights = conn.execute(
        "select strategy, symbol, weight from portfolio.weights where run_date = %s",
        (run_date,),
    ).fetchall()
    by_strategy: dict[str, dict[str, float]] = {}
    for strategy, symbol, weight in weights:
        by_strategy.setdefault(strategy, {})[symbol] = weight
    return [
        StrategyResult(
            strategy=row[0],
            weights=pd.Series(by_strategy.get(row[0], {}), name="weight", dtype=float),
            metrics=RiskMetrics(*row[1:10]),
            is_fallback=row[10],
            note=row[11],
        )
        for row in rows
    ]


def load_frontier(conn: psycopg.Connection, run_date: date) -> pd.DataFrame:
    rows = conn.execute(
        "select point, expected_return, volatility, sharpe from portfolio.frontier "
        "where run_date = %s order by point",
        (run_date,),
    ).fetchall()
    return pd.DataFrame(rows, columns=["point", "expected_return", "volatility", "sharpe"])


# --- step 5: the backtest -----------------------------------------------------------------------


def save_backtest(conn: psycopg.Connection, run_date: date, result: BacktestResult) -> None:
    with conn.transaction():
        for table in ("portfolio.backtest", "portfolio.backtest_metrics"):
            _delete(conn, table, run_date)
        daily = result.daily
        _copy(
            conn,
            "portfolio.backtest",
            [
                "run_date",
                "strategy",
                "date",
                "equity",
                "daily_return",
                "turnover",
                "cost",
                "drawdown",
                "rebalanced",
                "stale_prices",
            ],
            (
                (
                    run_date,
                    strategy,
                    day,
                    float(equity),
                    float(daily_return),
                    float(turnover),
                    float(cost),
                    min(max(float(drawdown), 0.0), 1.0),
                    bool(rebalanced),
                    int(stale),
                )
                for strategy, day, equity, daily_return, turnover, cost, drawdown, rebalanced, stale in daily[
                    [
                        "strategy",
                        "date",
                        "equity",
                        "daily_return",
                        "turnover",
                        "cost",
                        "drawdown",
                        "rebalanced",
                        "stale_prices",
                    ]
                ].itertuples(index=False, name=None)
            ),
        )
        for m in result.metrics:
            conn.execute(
                """
                insert into portfolio.backtest_metrics (run_date, strategy, start_date, end_date,
                    days, total_return, cagr, volatility, sharpe, sortino, max_drawdown,
                    rebalances, turnover, costs, stale_days, fallbacks)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    run_date,
                    m.strategy,
                    m.start_date,
                    m.end_date,
                    m.days,
                    m.total_return,
                    m.cagr,
                    m.volatility,
                    _float(m.sharpe),
                    _float(m.sortino),
                    m.max_drawdown,
                    m.rebalances,
                    m.turnover,
                    m.costs,
                    m.stale_days,
                    m.fallbacks,
                ),
            )
        _stamp(conn, run_date, "backtested_at")


def load_backtest_metrics(conn: psycopg.Connection, run_date: date) -> list[BacktestMetrics]:
    rows = conn.execute(
        """
        select strategy, start_date, end_date, days, total_return, cagr, volatility, sharpe,
               sortino, max_drawdown, rebalances, turnover, costs, stale_days, fallbacks
        from portfolio.backtest_metrics where run_date = %s order by strategy
        """,
        (run_date,),
    ).fetchall()
    return [BacktestMetrics(*row) for row in rows]


# --- step 6 and 7: rebalancing, report, e-mail ---------------------------------------------------


def save_rebalancing(
    conn: psycopg.Connection,
    run_date: date,
    target_strategy: str,
    holdings_file: str,
    plan: RebalancePlan,
) -> None:
    with conn.transaction():
        for table in ("portfolio.rebalancing", "portfolio.rebalancing_summary"):
            _delete(conn, table, run_date)
        conn.execute(
            """
            insert into portfolio.rebalancing_summary (run_date, target_strategy, holdings_file,
                portfolio_value, cash_before, cash_after, turnover, estimated_cost, buys_scaled_by)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                run_date,
                target_strategy,
                holdings_file,
                plan.portfolio_value,
                plan.cash_before,
                plan.cash_after,
                plan.turnover,
                plan.estimated_cost,
                plan.buys_scaled_by,
            ),
        )
        _copy(
            conn,
            "portfolio.rebalancing",
            [
                "run_date",
                "symbol",
                "target_strategy",
                "current_weight",
                "target_weight",
                "drift",
                "band",
                "action",
                "trade_weight",
                "price",
                "trade_value",
                "trade_quantity",
            ],
            (_trade_row(run_date, target_strategy, line) for line in plan.lines),
        )


def _trade_row(run_date: date, strategy: str, line: TradeLine) -> tuple:
    return (
        run_date,
        line.symbol,
        strategy,
        line.current_weight,
        line.target_weight,
        line.drift,
        line.band,
        line.action,
        line.trade_weight,
        line.price,
        line.trade_value,
        line.trade_quantity,
    )


def mark_reported(conn: psycopg.Connection, run_date: date, path: str) -> None:
    with conn.transaction():
        conn.execute(
            "update portfolio.runs set report_path = %s, reported_at = now() where run_date = %s",
            (path, run_date),
        )


def mark_email(conn: psycopg.Connection, run_date: date, status: str, detail: str) -> None:
    with conn.transaction():
        conn.execute(
            """
            update portfolio.runs set email_status = %s, email_detail = %s, emailed_at = now()
            where run_date = %s
            """,
            (status, detail, run_date),
        )
