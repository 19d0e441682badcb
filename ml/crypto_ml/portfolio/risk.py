"""Risk metrics of a portfolio: the same definitions for every strategy, the backtest and the report.

Conventions (written once, here): returns are daily; expected return and volatility are annualised
with `periods_per_year` (365); Sharpe and Sortino subtract the annual risk-free rate; Sortino's
downside deviation is the root mean square of daily shortfalls below the daily risk-free rate,
annualised by sqrt(365); VaR and CVaR are daily losses (positive numbers) at `confidence`, in the
Rockafellar-Uryasev definitions skfolio uses (the tests compare), computed on the portfolio's
historical daily returns and on Monte Carlo scenarios; max drawdown is the largest fall of the
compounded value from its running peak (a positive fraction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RiskMetrics:
    expected_return: float
    volatility: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    var_historical: float
    cvar_historical: float
    var_monte_carlo: float | None
    cvar_monte_carlo: float | None


def value_at_risk(returns: np.ndarray, confidence: float) -> float:
    """Daily VaR as a positive loss: the loss exceeded with probability at most 1 - confidence."""
    ordered = np.sort(np.asarray(returns, dtype=float))
    tail = (1 - confidence) * len(ordered)
    index = min(int(math.floor(tail + 1e-9)), len(ordered) - 1)
    return float(-ordered[index])


def conditional_value_at_risk(returns: np.ndarray, confidence: float) -> float:
    """Daily CVaR (expected shortfall) as a positive loss: the mean of the worst 1 - confidence
    of the probability mass, the boundary observation counted fractionally."""
    ordered = np.sort(np.asarray(returns, dtype=float))
    tail = (1 - confidence) * len(ordered)
    whole = int(math.floor(tail + 1e-9))
    if whole >= len(ordered):
        return float(-ordered.mean())
    partial = max(tail - whole, 0.0)
    total = ordered[:whole].sum() + partial * ordered[whole]
    mass = whole + partial
    return float(-total / mass) if mass > 0 else float(-ordered[0])


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough fall of the compounded value (0.3 = a 30 % fall)."""
    wealth = np.cumprod(1 + np.asarray(returns, dtype=float))
    peaks = np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:]
    return float(np.max(1 - wealth / peaks)) if len(wealth) else 0.0


def sortino_ratio(
    returns: np.ndarray, risk_free_rate: float, periods_per_year: int
) -> float | None:
    """Annualised excess return over annualised downside deviation; None with no shortfall."""
    daily = np.asarray(returns, dtype=float)
    shortfall = np.minimum(daily - risk_free_rate / periods_per_year, 0.0)
    downside = math.sqrt(float(np.mean(shortfall**2))) * math.sqrt(periods_per_year)
    if downside == 0:
        return None
    return (float(daily.mean()) * periods_per_year - risk_free_rate) / downside


def sharpe_ratio(expected_return: float, volatility: float, risk_free_rate: float) -> float | None:
    return (expected_return - risk_free_rate) / volatility if volatility > 0 else None


def portfolio_metrics(
    weights: pd.Series,
    mu: pd.Series,
    cov: pd.DataFrame,
    historical_simple_returns: pd.DataFrame,
    risk_free_rate: float,
    confidence: float,
    periods_per_year: int,
    scenarios: np.ndarray | None = None,
) -> RiskMetrics:
    """Every metric of one portfolio. Expected return and volatility come from the model inputs
    (mu, Sigma); Sortino, drawdown and historical VaR/CVaR from the portfolio's daily simple
    returns over the window (constant weights); Monte Carlo VaR/CVaR from `scenarios` (daily
    simple returns, assets in mu's order)."""
    symbols = list(mu.index)
    w = weights.reindex(symbols).fillna(0.0).to_numpy()
    expected = float(w @ mu.to_numpy())
    volatility = math.sqrt(max(float(w @ cov.loc[symbols, symbols].to_numpy() @ w), 0.0))
    history = historical_simple_returns[symbols].to_numpy() @ w
    mc_var = mc_cvar = None
    if scenarios is not None:
        simulated = scenarios @ w
        mc_var = value_at_risk(simulated, confidence)
        mc_cvar = conditional_value_at_risk(simulated, confidence)
    return RiskMetrics(
        expected_return=expected,
        volatility=volatility,
        sharpe=sharpe_ratio(expected, volatility, risk_free_rate),
        sortino=sortino_ratio(history, risk_free_rate, periods_per_year),
        max_drawdown=max_drawdown(history),
        var_historical=value_at_risk(history, confidence),
        cvar_historical=conditional_value_at_risk(history, confidence),
        var_monte_carlo=mc_var,
        cvar_monte_carlo=mc_cvar,
    )
