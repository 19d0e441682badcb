"""Portfolio drift: the latest rebalancing run's current weights against their targets.

One subject, the portfolio, not one per token: a rebalance is one decision, so one episode lists
every token outside its band. The band is the rule's absolute `band` when given, else each row's
own `band`, the portfolio's rebalancing band max(band_absolute, band_relative x target) that the
weekly report trades on (gold.rebalancing_recommendations computes it: one rule, one place).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd

from crypto_analytics.alerts.observations import WHOLE_RULE, Observation
from crypto_analytics.alerts.rules import PortfolioDriftRule

#: The columns of gold.rebalancing_recommendations the rule reads.
REBALANCING_COLUMNS = [
    "run_date",
    "target_strategy",
    "symbol",
    "current_weight",
    "target_weight",
    "drift",
    "band",
]
#: The holdings file is one portfolio: one subject, whatever its target strategy.
SUBJECT = "portfolio"


def portfolio_drift_observations(
    rule: PortfolioDriftRule, weights: pd.DataFrame, where: str
) -> list[Observation]:
    """Firing while a token of the newest run is outside its band; the value is the largest
    |drift| and the details list every token outside its band, largest first."""
    if weights.empty:
        return [
            Observation(
                rule.id, rule.type, WHOLE_RULE, "no_data", f"no rebalancing runs in {where}"
            )
        ]
    run_date = weights["run_date"].max()
    latest = weights[weights["run_date"] == run_date].copy()
    latest["drift"] = latest["drift"].astype(float)
    latest["band"] = rule.band if rule.band is not None else latest["band"].astype(float)
    outside = latest[latest["drift"].abs() > latest["band"] + 1e-12]
    outside = outside.reindex(outside["drift"].abs().sort_values(ascending=False).index)
    worst = float(latest["drift"].abs().max()) if len(latest) else 0.0
    strategy = ", ".join(sorted({str(s) for s in latest["target_strategy"].dropna()})) or "?"
    listed = ", ".join(
        f"{symbol} {drift * 100:+.1f} pp (band {band * 100:.1f})"
        for symbol, drift, band in zip(
            outside["symbol"], outside["drift"], outside["band"], strict=True
        )
    )
    message = (
        f"rebalance: {len(outside)} token(s) of the {run_date} portfolio outside their band "
        f"against {strategy}: {listed}"
        if len(outside)
        else f"{run_date} portfolio within every band against {strategy} "
        f"(largest drift {worst * 100:.1f} pp)"
    )
    return [
        Observation(
            rule.id,
            rule.type,
            SUBJECT,
            "firing" if len(outside) else "ok",
            message,
            value=worst,
            threshold=rule.band,
            observed_at=datetime.combine(run_date, time(0), tzinfo=UTC) + timedelta(days=1),
            details={
                "run_date": str(run_date),
                "target_strategy": strategy,
                "outside": [
                    {
                        "symbol": str(symbol),
                        "current_weight": float(current),
                        "target_weight": float(target),
                        "drift": float(drift),
                        "band": float(band),
                    }
                    for symbol, current, target, drift, band in zip(
                        outside["symbol"],
                        outside["current_weight"],
                        outside["target_weight"],
                        outside["drift"],
                        outside["band"],
                        strict=True,
                    )
                ],
                "source": where,
            },
        )
    ]
