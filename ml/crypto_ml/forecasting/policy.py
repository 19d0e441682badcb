"""Which tokens each model may fit or forecast, and the reason when it may not.

The policy, per model family (README "Forecasting" documents it):
- too short: fewer observed daily closes up to the cut-off than ml.min_history_days[family] →
  skipped for that fit, with the counts in the reason;
- pegged or constant: stablecoins (the universe's flag) and series whose closes do not move are
  forecast by the naive and drift baselines only. Trend, seasonality, volatility clustering and
  learned dynamics are not defined for a peg, and a near-zero scale would blow up the global
  models' per-token normalisation;
- stale: a token whose newest close is more than ml.stale_after_days older than the newest day in
  gold gets no forecast (its "next 7 days" would already be partly in the past);
- gaps: never filled. Each model's documented treatment lives in its module.
A skip is a `Skip` (logged at INFO and written to ml.model_skips), never an exception that stops
the other tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from crypto_ml.forecasting.panel import TokenSeries

log = logging.getLogger(__name__)

#: Families that model dynamics and therefore skip pegged/constant series.
DYNAMIC_FAMILIES = frozenset({"prophet", "lstm", "gbm", "garch"})
#: Below this standard deviation of daily log returns a series counts as constant.
CONSTANT_RETURN_STD = 1e-8

Stage = Literal["train", "predict"]


@dataclass(frozen=True)
class Skip:
    model: str
    symbol: str
    stage: Stage
    reason: str

    def log(self) -> Skip:
        # DEBUG: every fold repeats its skips; the pipeline logs each final one once at INFO
        log.debug("%s skips %s (%s): %s", self.model, self.symbol, self.stage, self.reason)
        return self


def is_constant(token: TokenSeries, until: pd.Timestamp | None = None) -> bool:
    returns = token.frame["log_return"]
    if until is not None:
        returns = returns.loc[:until]
    returns = returns.dropna()
    return len(returns) > 1 and float(np.std(returns.to_numpy())) < CONSTANT_RETURN_STD


def training_skip(
    token: TokenSeries, family: str, cutoff: pd.Timestamp, min_history: int
) -> Skip | None:
    """Why `family` must not fit `token` on data up to `cutoff`, or None when it may."""
    if family in DYNAMIC_FAMILIES:
        if token.is_stablecoin:
            return Skip(
                family,
                token.symbol,
                "train",
                "stablecoin (pegged): forecast by the naive and drift baselines only",
            ).log()
        if is_constant(token, cutoff):
            return Skip(
                family,
                token.symbol,
                "train",
                "constant price: forecast by the naive and drift baselines only",
            ).log()
    count = token.observed_count(cutoff)
    if count < min_history:
        return Skip(
            family,
            token.symbol,
            "train",
            f"{count} daily closes up to {cutoff.date()}, {family} needs {min_history}",
        ).log()
    return None


def stale_skip(
    token: TokenSeries, family: str, as_of: pd.Timestamp, stale_after_days: int
) -> Skip | None:
    """Why `family` must not forecast `token` at the panel's as-of day, or None."""
    age = (as_of - token.last_day).days
    if age > stale_after_days:
        return Skip(
            family,
            token.symbol,
            "predict",
            f"newest close is {token.last_day.date()}, {age} days before {as_of.date()} "
            f"(more than ml.stale_after_days = {stale_after_days})",
        ).log()
    return None
