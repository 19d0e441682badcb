"""Volatility spikes: realised volatility now against the same measure's own recent history.

Why against its own history and not a fixed level: a 60 % annualised volatility is a calm week for
PEPE and a crisis for BTC. The baseline is the median of the rolling volatility over the
`history_days` *before* the current window, so a spike cannot raise its own baseline, and a median
so one earlier spike does not either. Pure functions over a returns frame (rows: consecutive
calendar days, columns: symbols), annualised with 365 periods for crypto.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd

from crypto_analytics.alerts.observations import WHOLE_RULE, Observation
from crypto_analytics.alerts.rules import VolatilitySpikeRule
from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_analytics.errors import ConfigError


def realised_volatility(
    log_returns: pd.DataFrame, window: int, periods_per_year: int = PERIODS_PER_YEAR
) -> pd.DataFrame:
    """Rolling sample standard deviation (ddof 1) of log returns, annualised by sqrt(periods).

    NaN unless all `window` returns of the window exist: a gap is never bridged silently.
    """
    if window < 2:
        raise ConfigError(f"a volatility window needs at least 2 returns, got {window}")
    return log_returns.rolling(window, min_periods=window).std(ddof=1) * math.sqrt(periods_per_year)


@dataclass(frozen=True)
class Spike:
    """One token's current volatility, its baseline and how many history values it rests on."""

    as_of: date
    current: float
    baseline: float
    n_history: int

    @property
    def ratio(self) -> float:
        return self.current / self.baseline if self.baseline > 0 else math.inf


def volatility_spikes(
    log_returns: pd.DataFrame,
    window_days: int,
    history_days: int,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> dict[str, Spike | None]:
    """Per symbol: the volatility of the last `window_days` returns and the median rolling
    volatility over the `history_days` days before that window (None without a current value;
    n_history 0 and a NaN baseline without history).

    `log_returns` must be indexed by consecutive calendar days (missing days as NaN).
    """
    if log_returns.empty:
        return {}
    expected = pd.date_range(log_returns.index.min(), log_returns.index.max(), freq="D")
    if (
        len(expected) != len(log_returns.index)
        or not (pd.DatetimeIndex(log_returns.index) == expected).all()
    ):
        raise ConfigError("log returns must be indexed by consecutive calendar days")
    vol = realised_volatility(log_returns, window_days, periods_per_year)
    history = vol.iloc[-(window_days + history_days) : -window_days]
    as_of = pd.Timestamp(vol.index[-1]).date()
    out: dict[str, Spike | None] = {}
    for symbol in vol.columns:
        current = vol[symbol].iloc[-1]
        past = history[symbol].dropna()
        if np.isnan(current):
            out[str(symbol)] = None
            continue
        out[str(symbol)] = Spike(
            as_of=as_of,
            current=float(current),
            baseline=float(past.median()) if len(past) else math.nan,
            n_history=len(past),
        )
    return out


def spike_observations(
    rule: VolatilitySpikeRule, log_returns: pd.DataFrame, where: str
) -> list[Observation]:
    """Firing per token while current / baseline >= ratio; tokens without enough history are
    reported as no data with the count they have."""
    spikes = volatility_spikes(log_returns, rule.window_days, rule.history_days)
    if not spikes:
        return [Observation(rule.id, rule.type, WHOLE_RULE, "no_data", f"no returns in {where}")]
    out: list[Observation] = []
    for symbol, spike in sorted(spikes.items()):
        if spike is None:
            out.append(
                Observation(
                    rule.id,
                    rule.type,
                    symbol,
                    "no_data",
                    f"{symbol}: no {rule.window_days}-day volatility (missing returns) in {where}",
                )
            )
            continue
        observed_at = datetime.combine(spike.as_of + timedelta(days=1), time(0), tzinfo=UTC)
        if spike.n_history < rule.min_history:
            out.append(
                Observation(
                    rule.id,
                    rule.type,
                    symbol,
                    "no_data",
                    f"{symbol}: {spike.n_history} history values, the rule needs "
                    f"{rule.min_history}",
                    observed_at=observed_at,
                )
            )
            continue
        ratio = spike.ratio
        out.append(
            Observation(
                rule.id,
                rule.type,
                symbol,
                "firing" if ratio >= rule.ratio else "ok",
                f"{symbol} {rule.window_days}-day volatility {spike.current:.0%} is "
                f"{ratio:.2f}x its {rule.history_days}-day median {spike.baseline:.0%}",
                value=ratio,
                threshold=rule.ratio,
                observed_at=observed_at,
                details={
                    "current_volatility": spike.current,
                    "baseline_volatility": spike.baseline,
                    "n_history": spike.n_history,
                    "as_of": spike.as_of.isoformat(),
                    "source": where,
                },
            )
        )
    return out
