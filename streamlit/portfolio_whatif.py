"""The portfolio page's "recompute on the spot": the optimiser's own functions on a user's asset
set, bounds and risk-free rate, over gold's daily returns read through `queries`.

Why here and not in the page: the page stays layout, and this can be tested against the stored
weekly run. Nothing is computed differently from the weekly optimisation: the same estimation
window (strictly before the run date), eligibility rules, estimators, constraints and solvers
from crypto_ml.portfolio, with the user's values in place of the configured ones. Nothing is
written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from crypto_ml.errors import InvalidInput
from pydantic import ValidationError

from crypto_analytics.config import PortfolioConfig, Settings

import queries

#: Random portfolios drawn for the picture (the weekly run stores a sample of 2,000 of 10,000).
CLOUD_PORTFOLIOS = 5_000
CLOUD_SHOWN = 1_000
FRONTIER_POINTS = 30


@dataclass(frozen=True)
class WhatIf:
    """A recomputed max-Sharpe and min-volatility portfolio with its frontier and cloud."""

    run_date: date
    window_start: date
    window_end: date
    days: int
    risk_free_rate: float
    weights: pd.DataFrame  # strategy, symbol, weight
    portfolios: pd.DataFrame  # strategy, expected_return, volatility, sharpe
    frontier: pd.DataFrame  # point, expected_return, volatility, sharpe
    cloud: pd.DataFrame  # expected_return, volatility, sharpe
    notes: list[str] = field(default_factory=list)


def _config(settings: Settings, min_weight: float, max_weight: float, risk_free_rate: float) -> PortfolioConfig:  # fmt: skip
    """The configured portfolio settings with the user's values, validated the same way."""
    values = settings.portfolio.model_dump()
    values.update(min_weight=min_weight, max_weight=max_weight, risk_free_rate=risk_free_rate)
    try:
        return PortfolioConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'portfolio'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(problems) from None


def _metrics(strategy: str, weights: pd.Series, mu: pd.Series, cov: pd.DataFrame, rf: float) -> dict[str, object]:  # fmt: skip
    w = weights.reindex(mu.index).fillna(0.0).to_numpy()
    expected = float(w @ mu.to_numpy())
    volatility = float(np.sqrt(w @ cov.to_numpy() @ w))
    sharpe = (expected - rf) / volatility if volatility > 0 else float("nan")
    return {"strategy": strategy, "expected_return": expected, "volatility": volatility, "sharpe": sharpe}  # fmt: skip


def recompute(
    symbols: list[str],
    min_weight: float,
    max_weight: float,
    risk_free_rate: float,
    settings: Settings,
    run_date: date,
) -> WhatIf:
    """Max-Sharpe, min-volatility, the frontier and a Monte Carlo cloud for `symbols`."""
    from crypto_ml.portfolio.constraints import constraints_from_settings
    from crypto_ml.portfolio.inputs import build_inputs, eligible_returns, estimation_window
    from crypto_ml.portfolio.montecarlo import random_portfolios
    from crypto_ml.portfolio.optimizers import efficient_frontier, max_sharpe, min_volatility

    limit = settings.dashboard.max_recompute_assets
    if not 2 <= len(symbols) <= limit:
        raise InvalidInput(
            f"pick between 2 and {limit} assets to recompute on the spot (got {len(symbols)}); "
            "larger sets are the weekly optimiser's job (crypto-analytics portfolio optimize)"
        )
    config = _config(settings, min_weight, max_weight, risk_free_rate)
    notes = []
    if config.expected_returns == "forecast":
        config = config.model_copy(update={"expected_returns": "mean"})
        notes.append(
            "expected returns: historical mean (forecast-based returns need the weekly run)"
        )
    tokens = [settings.token(symbol) for symbol in symbols]
    start = run_date - timedelta(days=config.window_days)
    returns = queries.daily_returns(tuple(sorted(symbols)), start, config.return_kind)
    window = estimation_window(returns, run_date, config.window_days)
    eligible = eligible_returns(window, tokens, config)
    notes += [f"{e.symbol} left out: {e.reason}" for e in eligible.exclusions]
    inputs = build_inputs(run_date, eligible, config)
    mu, cov = inputs.expected_returns, inputs.covariance
    constraints = constraints_from_settings(config, settings.tokens).restricted_to(inputs.symbols)
    best = max_sharpe(mu, cov, config.risk_free_rate, constraints)
    if best.note:
        notes.append(best.note)
    safest = min_volatility(cov, constraints)
    frontier = pd.DataFrame(
        [
            {"point": p.point, **_metrics("frontier", p.weights, mu, cov, config.risk_free_rate)}
            for p in efficient_frontier(mu, cov, constraints, FRONTIER_POINTS)
        ]
    ).drop(columns="strategy")
    cloud = random_portfolios(
        mu, cov, config.risk_free_rate, CLOUD_PORTFOLIOS, config.monte_carlo.seed,
        config.monte_carlo.dirichlet_alpha,
    ).sample(CLOUD_SHOWN, config.monte_carlo.seed)  # fmt: skip
    chosen = {"max_sharpe": best.weights, "min_volatility": safest.weights}
    weights = pd.concat(
        [w.rename("weight").rename_axis("symbol").reset_index().assign(strategy=s) for s, w in chosen.items()]
    )[["strategy", "symbol", "weight"]]  # fmt: skip
    portfolios = pd.DataFrame(
        [_metrics(s, w, mu, cov, config.risk_free_rate) for s, w in chosen.items()]
    )
    return WhatIf(
        run_date=run_date,
        window_start=inputs.window_start,
        window_end=inputs.window_end,
        days=len(inputs.returns),
        risk_free_rate=config.risk_free_rate,
        weights=weights,
        portfolios=portfolios,
        frontier=frontier,
        cloud=cloud[["expected_return", "volatility", "sharpe"]],
        notes=notes,
    )
