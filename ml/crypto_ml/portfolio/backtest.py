"""Walk-forward backtest: weekly rebalancing, each strategy fed only data from before the date.

How time works (no look-ahead): a rebalance on day D estimates from returns dated before D (the
close of D-1 is the last price used) and trades at that close, which for a market that never
closes is D's open; the portfolio then earns D's return. Between rebalances weights drift with
prices. Every rebalance pays `transaction_cost_bps` on its turnover (sum of |target - drifted|;
the first purchase from cash counts). A held token with no close on a day (a gap in gold) keeps
its last price that day and the day is counted in `stale_days`: its move is booked when the price
returns, never invented. Benchmarks: equal weight (rebalanced weekly like the others) and a
single-token buy-and-hold (`btc_only` by default).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crypto_analytics.config import PortfolioConfig, Token
from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_ml.errors import InvalidInput, NotEnoughData
from crypto_ml.portfolio.constraints import Constraints
from crypto_ml.portfolio.estimators import returns_from_prices
from crypto_ml.portfolio.inputs import build_inputs, eligible_returns, estimation_window
from crypto_ml.portfolio.optimizers import STRATEGIES, OptimisedPortfolio, optimise
from crypto_ml.portfolio.risk import max_drawdown, sortino_ratio

log = logging.getLogger(__name__)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class BacktestMetrics:
    strategy: str
    start_date: date
    end_date: date
    days: int
    total_return: float
    cagr: float
    volatility: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    rebalances: int
    turnover: float
    costs: float
    stale_days: int
    fallbacks: int


@dataclass(frozen=True)
class BacktestResult:
    #: One row per strategy and day: equity (start = 1), daily_return (after costs), turnover,
    #: cost, drawdown, rebalanced, stale_prices.
    daily: pd.DataFrame
    metrics: list[BacktestMetrics]
    #: The target weights chosen at each rebalance: strategy, date, symbol, weight.
    rebalance_weights: pd.DataFrame


def benchmark_name(symbol: str) -> str:
    return f"{symbol.lower()}_only"


def rebalance_dates(start: date, end: date, weekday: str) -> list[date]:
    """Every `weekday` in [start, end]."""
    if weekday not in WEEKDAYS:
        raise InvalidInput(f"rebalance_weekday {weekday!r}: choose one of {', '.join(WEEKDAYS)}")
    first = start + timedelta(days=(WEEKDAYS.index(weekday) - start.weekday()) % 7)
    return [first + timedelta(weeks=k) for k in range((end - first).days // 7 + 1)]


def walk_forward(
    prices: pd.DataFrame,
    candidates: Sequence[Token],
    config: PortfolioConfig,
    constraints: Constraints,
    start: date,
    end: date,
    strategies: Sequence[str] | None = None,
    benchmark_symbol: str | None = None,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> BacktestResult:
    """Backtest `strategies` (default: the configured ones) and the benchmark on daily closes
    `prices` (index: dates, columns: symbols) over the days [start, end]."""
    strategies = list(strategies if strategies is not None else config.backtest.strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise InvalidInput(
            f"unknown backtest strategies {unknown}; choose from {', '.join(STRATEGIES)}"
        )
    if end < start:
        raise InvalidInput(f"backtest end {end} is before its start {start}")
    if config.expected_returns == "forecast":
        log.warning("backtest: forecasts are not point-in-time here; using historical means")
        config = config.model_copy(update={"expected_returns": "mean"})

    calendar = pd.date_range(prices.index.min(), prices.index.max(), freq="D")
    closes = prices.reindex(calendar).astype(float)
    returns = returns_from_prices(closes, config.return_kind)
    valuation = closes.ffill()  # marks a held token at its last price during a gap (flagged)
    days = [d.date() for d in calendar if start <= d.date() <= end]
    if not days:
        raise NotEnoughData(f"no prices between {start} and {end} for the backtest")
    candidates_by_symbol = {t.symbol: t for t in candidates if t.symbol in closes.columns}

    targets: dict[date, dict[str, pd.Series]] = {}
    notes: dict[tuple[str, date], bool] = {}
    for when in rebalance_dates(days[0], days[-1], config.backtest.rebalance_weekday):
        chosen = _targets_at(
            when, returns, closes, candidates_by_symbol, config, constraints, strategies
        )
        if chosen is None:
            continue
        targets[when] = {name: portfolio.weights for name, portfolio in chosen.items()}
        notes.update({(name, when): p.fallback for name, p in chosen.items()})
    if not targets:
        raise NotEnoughData(
            f"no rebalance date between {days[0]} and {days[-1]} has two eligible tokens with "
            f"{config.min_history_days} days of history before it"
        )
    first = min(targets)
    days = [d for d in days if d >= first]
    plans = {name: {when: t[name] for when, t in targets.items()} for name in strategies}
    if benchmark_symbol:
        eve = pd.Timestamp(first - timedelta(days=1))
        if benchmark_symbol not in closes.columns or np.isnan(
            closes[benchmark_symbol].get(eve, np.nan)
        ):
            raise NotEnoughData(
                f"benchmark {benchmark_symbol} has no close before the first rebalance {first}"
            )
        plans[benchmark_name(benchmark_symbol)] = {
            first: pd.Series({benchmark_symbol: 1.0}, name="weight")
        }

    frames, metrics, chosen_rows = [], [], []
    cost_rate = config.transaction_cost_bps / 10_000
    for name, plan in plans.items():
        daily = _simulate(valuation, closes, days, plan, cost_rate)
        daily.insert(0, "strategy", name)
        frames.append(daily)
        fallbacks = sum(1 for (s, _), fb in notes.items() if s == name and fb)
        metrics.append(_metrics(name, daily, config.risk_free_rate, periods_per_year, fallbacks))
        for when, weights in plan.items():
            for symbol, weight in weights.items():
                chosen_rows.append((name, when, symbol, float(weight)))
    rebalance_weights = pd.DataFrame(chosen_rows, columns=["strategy", "date", "symbol", "weight"])
    return BacktestResult(pd.concat(frames, ignore_index=True), metrics, rebalance_weights)


def _targets_at(
    when: date,
    returns: pd.DataFrame,
    closes: pd.DataFrame,
    candidates: dict[str, Token],
    config: PortfolioConfig,
    constraints: Constraints,
    strategies: Sequence[str],
) -> dict[str, OptimisedPortfolio] | None:
    """Each strategy's target for a rebalance on `when`, from data dated before it only."""
    eve = pd.Timestamp(when - timedelta(days=1))
    if eve not in closes.index:
        return None
    known = closes.loc[eve].notna()
    tradable = [t for s, t in candidates.items() if bool(known[s])]
    window = estimation_window(returns, when, config.window_days)
    try:
        eligible = eligible_returns(window, tradable, config)
        inputs = build_inputs(when, eligible, config)
    except NotEnoughData as exc:
        log.info("backtest %s: no rebalance (%s)", when, exc)
        return None
    limits = constraints.restricted_to(inputs.symbols)
    return {
        name: optimise(
            name,
            inputs.expected_returns,
            inputs.covariance,
            inputs.risk_free_rate,
            limits,
            config.hrp_linkage,
        )
        for name in strategies
    }


def _simulate(
    valuation: pd.DataFrame,
    closes: pd.DataFrame,
    days: list[date],
    plan: dict[date, pd.Series],
    cost_rate: float,
) -> pd.DataFrame:
    """Equity of one strategy following `plan` (targets by rebalance date) over `days`."""
    symbols = list(valuation.columns)
    position = {s: i for i, s in enumerate(symbols)}
    prices = valuation.to_numpy()
    missing = closes.isna().to_numpy()
    row = {d.date(): i for i, d in enumerate(valuation.index)}
    weights = np.zeros(len(symbols))
    equity = peak = 1.0
    records = []
    for day in days:
        i = row[day]
        opening = equity
        turnover = cost = 0.0
        rebalanced = day in plan
        if rebalanced:
            target = np.zeros(len(symbols))
            for symbol, weight in plan[day].items():
                target[position[str(symbol)]] = weight
            turnover = float(np.abs(target - weights).sum())
            cost = turnover * cost_rate
            equity *= 1 - cost
            weights = target
        with np.errstate(invalid="ignore", divide="ignore"):
            moves = np.where(weights > 0, prices[i] / prices[i - 1] - 1, 0.0)
        growth = float(weights @ moves)
        equity *= 1 + growth
        if 1 + growth > 0:
            weights = weights * (1 + moves) / (1 + growth)
        peak = max(peak, equity)
        records.append(
            (
                day,
                equity,
                equity / opening - 1,
                turnover,
                cost,
                1 - equity / peak,
                rebalanced,
                int(((weights > 0) & missing[i]).sum()),
            )
        )
    return pd.DataFrame(
        records,
        columns=[
            "date",
            "equity",
            "daily_return",
            "turnover",
            "cost",
            "drawdown",
            "rebalanced",
            "stale_prices",
        ],
    )


def _metrics(
    name: str, daily: pd.DataFrame, risk_free_rate: float, periods_per_year: int, fallbacks: int
) -> BacktestMetrics:
    returns = daily["daily_return"].to_numpy()
    final = float(daily["equity"].iloc[-1])
    n = len(returns)
    volatility = float(np.std(returns, ddof=1)) * math.sqrt(periods_per_year) if n > 1 else 0.0
    mean = float(np.mean(returns)) * periods_per_year
    return BacktestMetrics(
        strategy=name,
        start_date=daily["date"].iloc[0],
        end_date=daily["date"].iloc[-1],
        days=n,
        total_return=final - 1,
        cagr=final ** (periods_per_year / n) - 1 if final > 0 else -1.0,
        volatility=volatility,
        sharpe=(mean - risk_free_rate) / volatility if volatility > 0 else None,
        sortino=sortino_ratio(returns, risk_free_rate, periods_per_year),
        max_drawdown=max_drawdown(returns),
        rebalances=int(daily["rebalanced"].sum()),
        turnover=float(daily["turnover"].sum()),
        costs=float(daily["cost"].sum()),
        stale_days=int((daily["stale_prices"] > 0).sum()),
        fallbacks=fallbacks,
    )
