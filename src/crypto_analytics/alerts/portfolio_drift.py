"""Portfolio drift: the latest rebalancing run's current weights against their targets.

One subject per portfolio run target (the strategy), not per token: a rebalance is one decision,
so one episode lists every token outside its band. The band is the rule's absolute `band` when
given, else the portfolio's own rebalancing band, max(band_absolute, band_relative x target)
(portfolio.rebalancing in config/config.yaml), the same rule the weekly report trades on.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd

from crypto_analytics.alerts.observations import WHOLE_RULE, Observation
from crypto_analytics.alerts.rules import PortfolioDriftRule
from crypto_analytics.config import PortfolioRebalancingConfig

#: The columns of gold.rebalancing_recommendations the rule reads.
REBALANCING_COLUMNS = ["run_date", "strategy", "symbol", "current_weight", "target_weight"]


def bands(
    targets: pd.Series, rule: PortfolioDriftRule, policy: PortfolioRebalancingConfig
) -> pd.Series:
    """The allowed |current - target| per token."""
    if rule.band is not None:
        return pd.Series(rule.band, index=targets.index)
    return (targets.abs() * policy.band_relative).clip(lower=policy.band_absolute)


def portfolio_drift_observations(
    rule: PortfolioDriftRule,
    weights: pd.DataFrame,
    policy: PortfolioRebalancingConfig,
    where: str,
) -> list[Observation]:
    """Firing per strategy while a token of its newest run is outside its band; the value is the
    largest |drift| and the details list every token outside its band."""
    if weights.empty:
        return [
            Observation(
                rule.id, rule.type, WHOLE_RULE, "no_data", f"no rebalancing runs in {where}"
            )
        ]
    out: list[Observation] = []
    for strategy, runs in weights.groupby("strategy", sort=True):
        run_date = runs["run_date"].max()
        latest = runs[runs["run_date"] == run_date].copy()
        latest["drift"] = latest["current_weight"].astype(float) - latest["target_weight"].astype(
            float
        )
        latest["band"] = bands(latest["target_weight"].astype(float), rule, policy)
        outside = latest[latest["drift"].abs() > latest["band"] + 1e-12].sort_values(
            "drift", key=lambda s: -s.abs()
        )
        worst = float(latest["drift"].abs().max()) if len(latest) else 0.0
        subject = str(strategy)
        observed_at = datetime.combine(run_date, time(0), tzinfo=UTC) + timedelta(days=1)
        listed = ", ".join(
            f"{r.symbol} {r.drift * 100:+.1f} pp (band {r.band * 100:.1f})"
            for r in outside.itertuples(index=False)
        )
        out.append(
            Observation(
                rule.id,
                rule.type,
                subject,
                "firing" if len(outside) else "ok",
                (
                    f"{subject} portfolio of {run_date}: {len(outside)} token(s) outside their "
                    f"band: {listed}"
                    if len(outside)
                    else f"{subject} portfolio of {run_date}: every weight within its band "
                    f"(largest drift {worst * 100:.1f} pp)"
                ),
                value=worst,
                threshold=rule.band,
                observed_at=observed_at,
                details={
                    "run_date": str(run_date),
                    "outside": [
                        {
                            "symbol": r.symbol,
                            "current_weight": float(r.current_weight),
                            "target_weight": float(r.target_weight),
                            "drift": float(r.drift),
                            "band": float(r.band),
                        }
                        for r in outside.itertuples(index=False)
                    ],
                    "source": where,
                },
            )
        )
    return out
