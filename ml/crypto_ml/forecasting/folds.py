"""The rolling-origin walk-forward plan: expanding training windows, cut-offs `fold_days` apart.

Fold k trains on every day up to its cut-off c_k, then forecasts from each day of
[c_k, c_k + fold_days - 1] with inputs up to that day only. The last fold's last origin is
as_of - max(horizon), so every horizon of every fold can be scored against a realised close. A
training sample of a global model (origin o, horizon h) is usable at cut-off c only when
o + h <= c: its target must have been known at the cut-off (`usable_for_training`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crypto_ml.errors import InvalidInput


@dataclass(frozen=True)
class Fold:
    number: int
    cutoff: pd.Timestamp
    first_origin: pd.Timestamp
    last_origin: pd.Timestamp

    def contains(self, day: pd.Timestamp) -> bool:
        return self.first_origin <= day <= self.last_origin


def walk_forward_folds(
    as_of: pd.Timestamp, folds: int, fold_days: int, max_horizon: int
) -> list[Fold]:
    """`folds` folds ending so that the last origin is `as_of - max_horizon` days."""
    if folds < 1 or fold_days < 1 or max_horizon < 1:
        raise InvalidInput(
            f"folds ({folds}), fold_days ({fold_days}) and the horizons ({max_horizon}) must be >= 1"
        )
    last_cutoff = as_of - pd.Timedelta(days=max_horizon + fold_days - 1)
    plan = []
    for number in range(1, folds + 1):
        cutoff = last_cutoff - pd.Timedelta(days=(folds - number) * fold_days)
        plan.append(
            Fold(
                number=number,
                cutoff=cutoff,
                first_origin=cutoff,
                last_origin=cutoff + pd.Timedelta(days=fold_days - 1),
            )
        )
    return plan


def fold_of(plan: list[Fold], origin: pd.Timestamp) -> int | None:
    for fold in plan:
        if fold.contains(origin):
            return fold.number
    return None


def usable_for_training(origin: pd.Timestamp, horizon: int, cutoff: pd.Timestamp) -> bool:
    """A (origin, horizon) sample's target must be known at the cut-off."""
    return origin + pd.Timedelta(days=horizon) <= cutoff
