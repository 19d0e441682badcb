"""Stale data: the newest data time of each subject against a maximum age.

Evaluated on a clock as well as after gold builds (the alert DAG also runs every 30 minutes), so
data that stops arriving is noticed even when nothing downstream runs any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from crypto_analytics.alerts.observations import WHOLE_RULE, Observation
from crypto_analytics.alerts.rules import StaleDataRule, format_duration


def _age_text(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def stale_observations(
    rule: StaleDataRule, newest: Mapping[str, datetime | None], now: datetime, where: str
) -> list[Observation]:
    """Firing per subject while now - newest > max_age; value and threshold in hours.

    A subject with no data time at all (a stream that never landed a candle) is stale too: the
    question is whether fresh data is there, and it is not.
    """
    limit = rule.max_age.total_seconds() / 3600
    wanted = set(rule.symbols)
    items = {k: v for k, v in newest.items() if not wanted or k in wanted}
    missing = sorted(wanted - set(items))
    out: list[Observation] = [
        Observation(rule.id, rule.type, symbol, "no_data", f"{symbol} is not in {where}")
        for symbol in missing
    ]
    if not items and not missing:
        return [Observation(rule.id, rule.type, WHOLE_RULE, "no_data", f"{where} is empty")]
    for subject, last in sorted(items.items()):
        if last is None:
            out.append(
                Observation(
                    rule.id,
                    rule.type,
                    subject,
                    "firing",
                    f"{subject}: no data yet in {where}",
                    threshold=limit,
                    observed_at=now,
                    details={"source": where},
                )
            )
            continue
        hours = max(0.0, (now - last).total_seconds() / 3600)
        stale = hours > limit
        out.append(
            Observation(
                rule.id,
                rule.type,
                subject,
                "firing" if stale else "ok",
                f"{subject}: newest data {last:%Y-%m-%d %H:%M} UTC is {_age_text(hours)} old "
                f"(max {format_duration(rule.max_age)})",
                value=hours,
                threshold=limit,
                observed_at=now,
                details={"newest": last.isoformat(), "source": where},
            )
        )
    return out
