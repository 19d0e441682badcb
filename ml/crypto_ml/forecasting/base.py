"""What every price-model family implements, so the backtest, the pipeline and MLflow treat them alike.

A family `fit`s on a panel already cut at the cut-off (Panel.truncate) and returns a fitted model
plus the tokens it skipped and why. A fitted model `forecast`s from given origins: for each origin
it may read that token's rows up to the origin and nothing later (tests/ml/forecasting prove it
for every family by changing every row after the origin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import Skip

#: Origins to forecast from, per symbol (observed days of that symbol).
Origins = Mapping[str, pd.DatetimeIndex]


class FittedModel(Protocol):
    @property
    def family(self) -> str: ...

    @property
    def symbols(self) -> list[str]:
        """The tokens it can forecast."""
        ...

    def forecast(self, panel: Panel, origins: Origins, horizons: Sequence[int]) -> pd.DataFrame:
        """Forecast frame (crypto_ml.forecasting.forecasts.FORECAST_COLUMNS)."""
        ...


@dataclass
class FitResult:
    fitted: FittedModel
    skips: list[Skip] = field(default_factory=list)


class ModelFamily(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def per_symbol(self) -> bool:
        """True when each token is fitted on its own (Airflow maps these over groups of tokens)."""
        ...

    def fit(self, panel: Panel, cutoff: pd.Timestamp, symbols: Sequence[str]) -> FitResult: ...


def last_origins(panel: Panel, symbols: Sequence[str]) -> dict[str, pd.DatetimeIndex]:
    """Each symbol's newest observed day: where a production forecast starts."""
    return {
        s: panel[s].observed_days()[-1:]
        for s in symbols
        if s in panel and panel[s].observed_count()
    }
