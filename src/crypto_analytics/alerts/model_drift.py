"""Model drift: the forecasting work's own drift checks (gold.model_drift), one subject per model
and horizon, judged on the newest check of each.

Why not recompute the errors here: the forecasting package decides what drift means (realised
MAE against validation MAE, its threshold, its minimum number of points); the alert engine only
turns its verdict into episodes and notifications, so the two can never disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd

from crypto_analytics.alerts.observations import WHOLE_RULE, Observation
from crypto_analytics.alerts.rules import ModelDriftRule

#: The columns of gold.model_drift the rule reads.
DRIFT_COLUMNS = [
    "as_of_date",
    "model",
    "model_version",
    "horizon_days",
    "n_points",
    "realised_mae",
    "validation_mae",
    "error_ratio",
    "threshold",
    "is_drift",
    "checked_at",
]


def drift_observations(rule: ModelDriftRule, checks: pd.DataFrame, where: str) -> list[Observation]:
    """Firing per (model, horizon) while its newest check says is_drift."""
    if rule.models:
        checks = checks[checks["model"].isin(rule.models)]
    if rule.horizons:
        checks = checks[checks["horizon_days"].isin(rule.horizons)]
    if checks.empty:
        return [
            Observation(rule.id, rule.type, WHOLE_RULE, "no_data", f"no drift checks in {where}")
        ]
    newest = checks.sort_values("as_of_date").groupby(["model", "horizon_days"]).tail(1)
    out: list[Observation] = []
    records: list[dict[Any, Any]] = newest.sort_values(["model", "horizon_days"]).to_dict("records")
    for rec in records:
        row = SimpleNamespace(**{str(key): value for key, value in rec.items()})
        subject = f"{row.model} {int(row.horizon_days)}d"
        ratio = None if pd.isna(row.error_ratio) else float(row.error_ratio)
        checked_at = pd.Timestamp(row.checked_at)
        observed_at = checked_at.to_pydatetime() if pd.notna(checked_at) else datetime.now(UTC)
        if ratio is None:
            out.append(
                Observation(
                    rule.id,
                    rule.type,
                    subject,
                    "no_data",
                    f"{subject}: no verdict on {row.as_of_date} ({int(row.n_points)} realised "
                    "forecasts)",
                    observed_at=observed_at,
                )
            )
            continue
        drifting = bool(row.is_drift)
        out.append(
            Observation(
                rule.id,
                rule.type,
                subject,
                "firing" if drifting else "ok",
                f"{subject} (version {row.model_version or '?'}): realised MAE "
                f"{row.realised_mae:.4f} is {ratio:.2f}x its validation MAE "
                f"{row.validation_mae:.4f} (drift above {row.threshold:g}x) as of {row.as_of_date}",
                value=ratio,
                threshold=float(row.threshold),
                observed_at=observed_at,
                details={
                    "model": row.model,
                    "model_version": row.model_version,
                    "horizon_days": int(row.horizon_days),
                    "as_of_date": str(row.as_of_date),
                    "n_points": int(row.n_points),
                    "source": where,
                },
            )
        )
    return out
