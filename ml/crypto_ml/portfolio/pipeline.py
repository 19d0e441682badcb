"""The steps of a portfolio run, each reading what the previous one stored: for the DAG's tasks
(one transaction per step) and the CLI (one transaction for the whole run).

fetch returns -> estimate inputs -> Monte Carlo -> optimise -> backtest -> report -> e-mail.
Each step takes an open connection and the run date; numbers come from the pure modules, gold is
read through crypto_ml.data only, and results go to the `portfolio` schema through `store`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from crypto_analytics.config import Settings, Token
from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_ml.errors import InvalidInput, NotEnoughData
from crypto_ml.portfolio import store
from crypto_ml.portfolio.constraints import constraints_from_settings
from crypto_ml.portfolio.estimators import to_simple
from crypto_ml.portfolio.inputs import PortfolioInputs, eligible_returns, estimation_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailOutcome:
    status: str  # sent | skipped | failed
    detail: str


def _candidates(settings: Settings) -> list[Token]:
    return settings.select_tokens(settings.portfolio.symbols or None)


@contextmanager
def _reading_gold() -> Iterator[None]:
    """A gold table that does not exist yet is a state to explain, not a traceback."""
    try:
        yield
    except psycopg.errors.UndefinedTable as exc:
        raise NotEnoughData(
            f"gold is not built yet ({exc.diag.message_primary}): run `crypto-analytics demo`, "
            "or ingest and `crypto-analytics dbt build`"
        ) from exc


def fetch_returns(
    conn: psycopg.Connection, run_date: date, settings: Settings, require_fresh: bool = False
) -> int:
    """Step 1: the window's gold returns, eligibility with reasons; replaces the run. Returns
    the number of eligible tokens. With `require_fresh` (the scheduled DAG) gold must already
    hold the day before the run date, else NotEnoughData (the task retries until it does)."""
    from crypto_ml import data

    config = settings.portfolio
    candidates = _candidates(settings)
    start = run_date - timedelta(days=config.window_days)
    with _reading_gold():
        returns = data.read_daily_returns(
            config.return_kind,
            before=run_date,
            start=start,
            symbols=[t.symbol for t in candidates],
        )
    if returns.empty:
        raise NotEnoughData(
            f"gold.daily_crypto_metrics has no daily returns between {start} and {run_date}: "
            "ingest and build gold first (crypto-analytics demo, or the bronze/silver/gold DAGs)"
        )
    newest = pd.DatetimeIndex(returns.index).max().date()
    if require_fresh and newest < run_date - timedelta(days=1):
        raise NotEnoughData(
            f"gold's newest daily return is for {newest}, but a run on {run_date} needs "
            f"{run_date - timedelta(days=1)}: waiting for the gold_aggregation DAG"
        )
    window = estimation_window(returns, run_date, config.window_days)
    eligible = eligible_returns(window, candidates, config)
    store.save_run(conn, run_date, config, candidates, eligible, PERIODS_PER_YEAR)
    return len(eligible.symbols)


def estimate_inputs(conn: psycopg.Connection, run_date: date, settings: Settings) -> None:
    """Step 2: expected returns and covariance from the stored returns (the run's settings)."""
    from crypto_ml.portfolio.estimators import forecast_expected_returns
    from crypto_ml.portfolio.inputs import EligibleReturns, build_inputs

    run = store.load_run(conn, run_date)
    config = run.config
    returns = store.load_returns(conn, run_date)
    eligible = EligibleReturns(returns, store.load_exclusions(conn, run_date), run.dates_dropped)
    forecasts = None
    if config.expected_returns == "forecast":
        forecasts = forecast_expected_returns(
            _champion_forecasts(run_date, config.forecast_horizon_days),
            _last_closes(run_date, list(returns.columns)),
            config.return_kind,
            run.periods_per_year,
        )
    inputs = build_inputs(run_date, eligible, config, forecasts, run.periods_per_year)
    store.save_estimates(conn, inputs)


def _champion_forecasts(run_date: date, horizon: int) -> pd.DataFrame:
    from crypto_ml import data

    try:
        forecasts = data.read_champion_forecasts(run_date, horizon)
    except LookupError as exc:
        raise NotEnoughData(f"{exc}; or set portfolio.expected_returns to mean or ema") from exc
    if forecasts.empty:
        raise NotEnoughData(
            f"gold.price_predictions has no champion forecast with horizon {horizon} days made "
            f"before {run_date}; run the forecasting DAG or set portfolio.expected_returns to mean"
        )
    return forecasts


def _last_closes(run_date: date, symbols: list[str], lookback_days: int = 14) -> pd.Series:
    """Each token's newest close before the run date (within `lookback_days`), for valuation."""
    from crypto_ml import data

    with _reading_gold():
        closes = data.read_daily_closes(
            before=run_date, start=run_date - timedelta(days=lookback_days), symbols=symbols
        )
    last = {s: closes[s].dropna().iloc[-1] for s in closes.columns if closes[s].notna().any()}
    return pd.Series(last, dtype=float)


def simulate_portfolios(conn: psycopg.Connection, run_date: date, settings: Settings) -> int:
    """Step 3: the Monte Carlo cloud; stores a display sample. Returns the portfolios simulated."""
    from crypto_ml.portfolio.montecarlo import random_portfolios

    inputs = store.load_inputs(conn, run_date)
    mc = store.load_run(conn, run_date).config.monte_carlo
    cloud = random_portfolios(
        inputs.expected_returns,
        inputs.covariance,
        inputs.risk_free_rate,
        mc.portfolios,
        mc.seed,
        mc.dirichlet_alpha,
    )
    best = float(np.nanmax(cloud.sharpes)) if np.isfinite(cloud.sharpes).any() else None
    summary = store.MonteCarloSummary(
        mc.portfolios, mc.dirichlet_alpha, mc.seed, best, float(cloud.volatilities.max())
    )
    store.save_monte_carlo(conn, run_date, summary, cloud.sample(mc.display_sample, mc.seed))
    return len(cloud)


def optimise_portfolios(
    conn: psycopg.Connection, run_date: date, settings: Settings
) -> list[store.StrategyResult]:
    """Step 4: every strategy with its risk metrics, and the efficient frontier."""
    from crypto_ml.portfolio.montecarlo import return_scenarios
    from crypto_ml.portfolio.optimizers import STRATEGIES, efficient_frontier, optimise
    from crypto_ml.portfolio.risk import portfolio_metrics, sharpe_ratio

    inputs = store.load_inputs(conn, run_date)
    config = store.load_run(conn, run_date).config
    limits = constraints_from_settings(config, settings.tokens).restricted_to(inputs.symbols)
    mu, cov = inputs.expected_returns, inputs.covariance
    simple_history = to_simple(inputs.returns, inputs.return_kind)
    scenarios = to_simple(
        return_scenarios(
            mu, cov, config.monte_carlo.var_scenarios, config.monte_carlo.seed, PERIODS_PER_YEAR
        ),
        inputs.return_kind,
    )
    results = []
    for strategy in STRATEGIES:
        portfolio = optimise(strategy, mu, cov, inputs.risk_free_rate, limits, config.hrp_linkage)
        metrics = portfolio_metrics(
            portfolio.weights,
            mu,
            cov,
            simple_history,
            inputs.risk_free_rate,
            config.var_confidence,
            inputs.periods_per_year,
            scenarios,
        )
        results.append(
            store.StrategyResult(
                strategy, portfolio.weights, metrics, portfolio.fallback, portfolio.note
            )
        )
    frontier = efficient_frontier(mu, cov, limits, config.frontier_points)
    frontier_metrics = []
    for point in frontier:
        w = point.weights.to_numpy()
        ret = float(w @ mu.to_numpy())
        vol = float(np.sqrt(max(float(w @ cov.to_numpy() @ w), 0.0)))
        frontier_metrics.append((ret, vol, sharpe_ratio(ret, vol, inputs.risk_free_rate)))
    store.save_optimisation(
        conn, run_date, results, frontier, frontier_metrics, config.var_confidence
    )
    return results


def backtest_strategies(conn: psycopg.Connection, run_date: date, settings: Settings) -> None:
    """Step 5: the walk-forward backtest over the configured lookback, from gold closes."""
    from crypto_ml import data
    from crypto_ml.portfolio.backtest import walk_forward

    config = store.load_run(conn, run_date).config
    candidates = _candidates(settings)
    start = run_date - timedelta(days=config.backtest.lookback_days)
    history_start = start - timedelta(days=config.window_days + 1)
    with _reading_gold():
        closes = data.read_daily_closes(
            before=run_date, start=history_start, symbols=[t.symbol for t in candidates]
        )
    if closes.empty:
        raise NotEnoughData(f"gold has no daily closes before {run_date} for the backtest")
    result = walk_forward(
        closes,
        candidates,
        config,
        constraints_from_settings(config, settings.tokens),
        start=max(start, closes.index.min().date() + timedelta(days=1)),
        end=run_date - timedelta(days=1),
        benchmark_symbol=config.backtest.benchmark_symbol,
    )
    store.save_backtest(conn, run_date, result)


def optimise_run(
    conn: psycopg.Connection, run_date: date, settings: Settings, backtest: bool = True
) -> list[store.StrategyResult]:
    """Steps 1-5 inside one transaction (the CLI and `make demo`)."""
    with conn.transaction():
        fetch_returns(conn, run_date, settings)
        estimate_inputs(conn, run_date, settings)
        simulate_portfolios(conn, run_date, settings)
        results = optimise_portfolios(conn, run_date, settings)
        if backtest:
            backtest_strategies(conn, run_date, settings)
    return results


def build_report(
    conn: psycopg.Connection, run_date: date, settings: Settings, holdings_file: Path | None = None
) -> Path:
    """Step 6: the trade list for the holdings file, and the report (HTML, Markdown, chart)
    written under the reports folder. Returns the HTML report's path."""
    from crypto_ml.portfolio.holdings import current_portfolio, load_holdings
    from crypto_ml.portfolio.rebalancing import plan_rebalance
    from crypto_ml.portfolio.report import ReportData, write_report

    run = store.load_run(conn, run_date)
    # The optimisation's settings are the run's own; how to trade and where to write are today's.
    config = settings.portfolio
    strategies = {r.strategy: r for r in store.load_strategies(conn, run_date)}
    target = strategies.get(config.rebalancing.target_strategy)
    if target is None:
        raise InvalidInput(
            f"target strategy {config.rebalancing.target_strategy!r} was not computed; "
            f"choose one of {', '.join(strategies)}"
        )
    path = settings.resolve(holdings_file or config.rebalancing.holdings_file)
    holdings = load_holdings(path, settings.tokens)
    held = list(holdings.quantities or holdings.weights or {})
    prices = _last_closes(run_date, sorted(set(held) | set(target.weights.index)))
    plan = plan_rebalance(
        current_portfolio(holdings, prices),
        target.weights[target.weights > 0],
        config.rebalancing.band_absolute,
        config.rebalancing.band_relative,
        config.transaction_cost_bps,
    )
    store.save_rebalancing(conn, run_date, target.strategy, str(path), plan)
    inputs = store.load_inputs(conn, run_date)
    report = ReportData(
        run=run,
        inputs=inputs,
        categories=store.load_categories(conn, run_date),
        strategies=list(strategies.values()),
        target_strategy=target.strategy,
        frontier=store.load_frontier(conn, run_date),
        monte_carlo=store.load_monte_carlo(conn, run_date),
        monte_carlo_summary=store.load_monte_carlo_summary(conn, run_date),
        backtest=store.load_backtest_metrics(conn, run_date),
        plan=plan,
        holdings_file=str(path),
    )
    files = write_report(report, settings.resolve(config.rebalancing.reports_dir))
    store.mark_reported(conn, run_date, str(files.html))
    return files.html


def send_report(conn: psycopg.Connection, run_date: date, settings: Settings) -> EmailOutcome:
    """Step 7: e-mail the stored report. With no SMTP host or recipients configured the send is
    skipped (recorded, not an error); a failed send is recorded and raised as NotificationError,
    and the report stays on disk."""
    from crypto_analytics.errors import NotificationError
    from crypto_analytics.notifications.smtp import email_enabled
    from crypto_ml.portfolio.report import load_written_report, report_message

    run = store.load_run(conn, run_date)
    if not run.report_path:
        raise NotEnoughData(
            f"portfolio run {run_date} has no report yet: run `crypto-analytics portfolio report`"
        )
    if not email_enabled(settings):
        detail = (
            "e-mail is off (no notifications.smtp.host or recipients configured); "
            f"the report is at {run.report_path}"
        )
        store.mark_email(conn, run_date, "skipped", detail)
        log.info("%s", detail)
        return EmailOutcome("skipped", detail)
    from crypto_analytics.notifications.smtp import send_message

    written = load_written_report(Path(run.report_path))
    message = report_message(written, settings)
    try:
        send_message(message, settings)
    except NotificationError as exc:
        store.mark_email(conn, run_date, "failed", str(exc))
        conn.commit()
        raise NotificationError(f"{exc}; the report is kept at {run.report_path}") from exc
    detail = f"sent to {message['To']}"
    store.mark_email(conn, run_date, "sent", detail)
    return EmailOutcome("sent", detail)


def summary_lines(results: list[store.StrategyResult], inputs: PortfolioInputs) -> list[str]:
    """A few lines for the CLI: each strategy's numbers and top holdings."""
    lines = [
        f"{len(inputs.symbols)} eligible tokens, {len(inputs.returns)} days "
        f"({inputs.window_start} to {inputs.window_end}), {len(inputs.exclusions)} excluded"
    ]
    for r in results:
        top = r.weights.sort_values(ascending=False).head(4)
        holdings = ", ".join(f"{s} {w:.1%}" for s, w in top.items() if w > 0)
        sharpe = f"{r.metrics.sharpe:.2f}" if r.metrics.sharpe is not None else "n/a"
        flag = " [fallback]" if r.is_fallback else ""
        lines.append(
            f"{r.strategy:15s} return {r.metrics.expected_return:7.1%}  vol "
            f"{r.metrics.volatility:6.1%}  Sharpe {sharpe}{flag}  {holdings}"
        )
    return lines
