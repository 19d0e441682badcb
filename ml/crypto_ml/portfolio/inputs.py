"""Which tokens a run may hold, and the exact inputs (returns, mu, Sigma) it optimises over.

Why exclusions carry reasons: a token silently missing from the weights looks like a bug; the
run stores why each one was left out (stablecoin policy, short history, constant price, gaps), and
the report lists them. Gaps are never filled: days on which an eligible token has no return are
dropped from the common sample and counted (`dates_dropped`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from crypto_analytics.config import PortfolioConfig, Token
from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_ml.errors import NotEnoughData
from crypto_ml.portfolio.estimators import (
    CovarianceMethod,
    ExpectedReturnsMethod,
    ReturnKind,
    covariance,
    expected_returns,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exclusion:
    symbol: str
    reason: str


@dataclass(frozen=True)
class EligibleReturns:
    """Complete daily returns of the eligible tokens over the window, and who was left out."""

    returns: pd.DataFrame
    exclusions: tuple[Exclusion, ...]
    dates_dropped: int
    observations: dict[str, int] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return list(self.returns.columns)


@dataclass(frozen=True)
class PortfolioInputs:
    """Everything an optimisation used, so any result can be reproduced and audited."""

    run_date: date
    returns: pd.DataFrame
    expected_returns: pd.Series
    covariance: pd.DataFrame
    return_kind: ReturnKind
    expected_returns_method: ExpectedReturnsMethod
    covariance_method: CovarianceMethod
    risk_free_rate: float
    window_start: date
    window_end: date
    dates_dropped: int
    exclusions: tuple[Exclusion, ...] = ()
    periods_per_year: int = PERIODS_PER_YEAR

    @property
    def symbols(self) -> list[str]:
        return list(self.expected_returns.index)


def estimation_window(returns: pd.DataFrame, run_date: date, window_days: int) -> pd.DataFrame:
    """Rows dated in [run_date - window_days, run_date): strictly before the run date, so a run
    (or a backtest rebalance) on day D never sees D's own return."""
    index = pd.DatetimeIndex(returns.index)
    start = pd.Timestamp(run_date - timedelta(days=window_days))
    end = pd.Timestamp(run_date)
    return returns.loc[(index >= start) & (index < end)]


def eligible_returns(
    window: pd.DataFrame,
    candidates: Sequence[Token],
    config: PortfolioConfig,
) -> EligibleReturns:
    """Apply the stablecoin policy and the history rules; keep days where every kept token has a
    return. Raises NotEnoughData, listing every exclusion, when fewer than two tokens remain."""
    exclusions: list[Exclusion] = []
    kept: list[str] = []
    observations: dict[str, int] = {}
    for token in candidates:
        symbol = token.symbol
        if token.stablecoin and config.stablecoins == "exclude":
            exclusions.append(Exclusion(symbol, "stablecoin (portfolio.stablecoins = exclude)"))
            continue
        column = window[symbol] if symbol in window.columns else pd.Series(dtype=float)
        count = int(column.notna().sum())
        observations[symbol] = count
        if count < config.min_history_days:
            exclusions.append(
                Exclusion(
                    symbol,
                    f"short history: {count} daily returns in the {config.window_days}-day "
                    f"window, fewer than min_history_days {config.min_history_days}",
                )
            )
            continue
        if float(column.std()) == 0.0:
            exclusions.append(Exclusion(symbol, "constant price in the window (zero variance)"))
            continue
        kept.append(symbol)

    frame = window[kept] if kept else pd.DataFrame(index=window.index)
    complete = frame.dropna()
    # Gaps of different tokens on different days shrink the common sample; drop the token with
    # the most missing days until the sample is long enough again.
    while len(kept) > 1 and len(complete) < config.min_history_days:
        worst = max(kept, key=lambda s: int(frame[s].isna().to_numpy().sum()))
        kept.remove(worst)
        exclusions.append(
            Exclusion(
                worst,
                f"gaps: with its missing days only {len(complete)} days remain on which every "
                f"eligible token has a return (min_history_days {config.min_history_days})",
            )
        )
        frame = window[kept]
        complete = frame.dropna()

    if len(kept) < 2:
        detail = "; ".join(f"{e.symbol}: {e.reason}" for e in exclusions) or "none considered"
        raise NotEnoughData(
            f"fewer than two eligible assets ({', '.join(kept) or 'none'}) in the "
            f"{config.window_days} days of gold returns; excluded: {detail}. Ingest more history "
            "(crypto-analytics backfill) or relax portfolio.min_history_days"
        )
    dropped = len(frame.dropna(how="all")) - len(complete)
    if dropped:
        log.info("%d days dropped from the common sample for gaps", dropped)
    return EligibleReturns(complete, tuple(exclusions), dropped, observations)


def build_inputs(
    run_date: date,
    eligible: EligibleReturns,
    config: PortfolioConfig,
    forecast_returns: pd.Series | None = None,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> PortfolioInputs:
    """mu and Sigma for the eligible tokens. With expected_returns = forecast, `forecast_returns`
    (annualised, from `estimators.forecast_expected_returns`) must be given; tokens without a
    forecast are excluded with that reason."""
    returns = eligible.returns
    exclusions = list(eligible.exclusions)
    if config.expected_returns == "forecast":
        if forecast_returns is None:
            raise NotEnoughData("expected_returns = forecast but no forecasts were given")
        missing = [s for s in returns.columns if s not in forecast_returns.index]
        exclusions += [
            Exclusion(s, f"no champion forecast ({config.forecast_horizon_days}-day horizon)")
            for s in missing
        ]
        returns = returns.drop(columns=missing)
        if returns.shape[1] < 2:
            raise NotEnoughData(
                "fewer than two eligible assets have a champion forecast in gold.price_predictions"
            )
        mu = forecast_returns.reindex(returns.columns).rename("expected_return")
    else:
        mu = expected_returns(
            returns, config.expected_returns, config.ema_span_days, periods_per_year
        )
    cov = covariance(returns, config.covariance, periods_per_year)
    index = pd.DatetimeIndex(returns.index)
    return PortfolioInputs(
        run_date=run_date,
        returns=returns,
        expected_returns=mu,
        covariance=cov,
        return_kind=config.return_kind,
        expected_returns_method=config.expected_returns,
        covariance_method=config.covariance,
        risk_free_rate=config.risk_free_rate,
        window_start=index.min().date(),
        window_end=index.max().date(),
        dates_dropped=eligible.dates_dropped,
        exclusions=tuple(exclusions),
        periods_per_year=periods_per_year,
    )
