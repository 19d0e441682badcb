"""From current weights to the trades that bring a portfolio back to its target.

Threshold bands: a token whose weight is within max(band_absolute, band_relative x target) of its
target is not traded (small drifts are not worth their fees); every token outside its band is
traded back to its target. The trades' net cash need settles in cash: when buys would need more
cash than the holdings' cash plus the sales (and fees), every buy is scaled down by the same
factor (`buys_scaled_by` < 1, reported). Amounts are fractions of the portfolio, and money and
units when its value is known.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from crypto_ml.portfolio.holdings import CurrentPortfolio

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TradeLine:
    symbol: str
    current_weight: float
    target_weight: float
    drift: float
    band: float
    action: str
    trade_weight: float
    price: float | None
    trade_value: float | None
    trade_quantity: float | None


@dataclass(frozen=True)
class RebalancePlan:
    lines: list[TradeLine]
    portfolio_value: float | None
    cash_before: float
    cash_after: float
    turnover: float
    estimated_cost: float
    buys_scaled_by: float

    @property
    def trades(self) -> list[TradeLine]:
        return [line for line in self.lines if line.action != "hold"]


def plan_rebalance(
    current: CurrentPortfolio,
    target: pd.Series,
    band_absolute: float,
    band_relative: float,
    cost_bps: float,
) -> RebalancePlan:
    """The trades for `current` against `target` weights (summing to 1) under threshold bands."""
    symbols = sorted(set(current.weights.index) | set(target.index))
    now = current.weights.reindex(symbols).fillna(0.0)
    goal = target.reindex(symbols).fillna(0.0)
    bands = (goal * band_relative).clip(lower=band_absolute)
    drift = now - goal
    wanted = (goal - now).where(drift.abs() > bands + 1e-12, 0.0)

    cost_rate = cost_bps / 10_000
    buys = float(wanted[wanted > 0].sum())
    sells = float(-wanted[wanted < 0].sum())
    available = current.cash_weight + sells * (1 - cost_rate)
    scale = 1.0
    if buys * (1 + cost_rate) > available + 1e-12:
        scale = max(available, 0.0) / (buys * (1 + cost_rate))
        log.info("buys need more cash than the sales free up: scaled by %.4f", scale)
        wanted = wanted.where(wanted <= 0, wanted * scale)
    turnover = float(wanted.abs().sum())
    cost = turnover * cost_rate
    cash_after = current.cash_weight - float(wanted.sum()) - cost

    lines = []
    for symbol in symbols:
        trade = float(wanted[symbol])
        price = current.prices.get(symbol)
        price = float(price) if price is not None and not pd.isna(price) else None
        value = trade * current.value if current.value is not None else None
        quantity = value / price if value is not None and price else None
        lines.append(
            TradeLine(
                symbol=symbol,
                current_weight=float(now[symbol]),
                target_weight=float(goal[symbol]),
                drift=float(drift[symbol]),
                band=float(bands[symbol]),
                action="buy" if trade > 0 else "sell" if trade < 0 else "hold",
                trade_weight=trade,
                price=price,
                trade_value=value,
                trade_quantity=quantity,
            )
        )
    return RebalancePlan(
        lines=lines,
        portfolio_value=current.value,
        cash_before=current.cash_weight,
        cash_after=cash_after,
        turnover=turnover,
        estimated_cost=cost,
        buys_scaled_by=scale,
    )
