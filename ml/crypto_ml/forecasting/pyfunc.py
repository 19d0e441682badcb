"""The fitted families as MLflow pyfunc models: what the registry versions hold and serve.

Why pyfunc around our own fitted objects: a family is a whole-universe model (38 Prophet fits,
one global LSTM with per-token scales, fifteen boosting models), and what a caller wants from it
is "forecasts for these tokens from their newest close". The pyfunc takes gold feature rows
(gold.token_daily_features columns) and returns price forecasts; the native flavours (prophet per
token, pytorch for the LSTM network) are logged beside it in the same run for inspection. The
ensemble's input is its members' forecasts instead (it is a model of models).

This module imports mlflow at import time: only the training and prediction stages import it.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from crypto_ml.errors import InvalidInput
from crypto_ml.forecasting.base import FittedModel, last_origins
from crypto_ml.forecasting.ensemble import EnsembleState, ensemble_forecasts
from crypto_ml.forecasting.forecasts import INTERVALS
from crypto_ml.forecasting.garch import GarchModel, annualised
from crypto_ml.forecasting.panel import Panel

#: Columns of a price forecast as the warehouse stores it (ml.price_predictions).
PRICE_COLUMNS = [
    "symbol", "as_of_date", "horizon_days", "target_date", "point", "lower_80", "upper_80",
    "lower_95", "upper_95",
]  # fmt: skip
VOLATILITY_OUTPUT = [
    "symbol", "as_of_date", "horizon_days", "target_date", "volatility_annualised", "variance_h",
]  # fmt: skip


def to_prices(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Log-price forecast frame -> prices (PRICE_COLUMNS)."""
    out = pd.DataFrame(
        {
            "symbol": forecasts["symbol"].astype(str),
            "as_of_date": pd.to_datetime(forecasts["origin"]),
            "horizon_days": forecasts["horizon"].astype("int64"),
            "target_date": pd.to_datetime(forecasts["target_date"]),
            "point": np.exp(forecasts["point"].astype(float)),
        }
    )
    for coverage, (lower, upper) in INTERVALS.items():
        out[f"lower_{coverage}"] = np.exp(forecasts[lower].astype(float))
        out[f"upper_{coverage}"] = np.exp(forecasts[upper].astype(float))
    return out.reset_index(drop=True).loc[:, PRICE_COLUMNS]


@dataclass
class Bundle:
    """What a pyfunc artifact holds: the fitted family and the horizons it forecasts."""

    fitted: FittedModel | GarchModel | EnsembleState
    horizons: list[int]


def save_bundle(bundle: Bundle, path: str) -> str:
    with open(path, "wb") as handle:
        pickle.dump(bundle, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _load_bundle(context: PythonModelContext) -> Bundle:
    with open(context.artifacts["fitted"], "rb") as handle:
        bundle: Bundle = pickle.load(handle)  # our own artifact, written by save_bundle
    return bundle


class PriceForecaster(PythonModel):
    """A price family: gold feature rows in, forecasts from each token's newest close out."""

    def load_context(self, context: PythonModelContext) -> None:
        self.bundle = _load_bundle(context)

    def forecast_panel(self, panel: Panel, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Log-price forecasts (forecasts.FORECAST_COLUMNS) from each token's newest close."""
        fitted = self.bundle.fitted
        if isinstance(fitted, EnsembleState | GarchModel):
            raise InvalidInput("this artifact holds no price family")
        wanted = [s for s in (symbols or fitted.symbols) if s in fitted.symbols]
        return fitted.forecast(panel, last_origins(panel, wanted), self.bundle.horizons)

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict | None = None,
    ) -> pd.DataFrame:
        return to_prices(self.forecast_panel(Panel.from_features(model_input)))


class EnsembleForecaster(PythonModel):
    """The ensemble: member forecasts (log prices, with `model` and `sigma`) in, prices out."""

    def load_context(self, context: PythonModelContext) -> None:
        self.bundle = _load_bundle(context)

    def combine(self, members: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(self.bundle.fitted, EnsembleState):
            raise InvalidInput("this artifact holds no ensemble")
        return ensemble_forecasts(self.bundle.fitted, members)

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict | None = None,
    ) -> pd.DataFrame:
        frame = model_input.copy()
        for column in ("origin", "target_date"):
            frame[column] = pd.to_datetime(frame[column])
        return to_prices(self.combine(frame))


class VolatilityForecaster(PythonModel):
    """GARCH(1,1) per token: gold feature rows in, volatility forecasts out."""

    def load_context(self, context: PythonModelContext) -> None:
        self.bundle = _load_bundle(context)

    def forecast_panel(self, panel: Panel, periods_per_year: int) -> pd.DataFrame:
        fitted = self.bundle.fitted
        if not isinstance(fitted, GarchModel):
            raise InvalidInput("this artifact holds no volatility model")
        origins = last_origins(panel, fitted.symbols)
        raw = fitted.forecast(panel, origins, self.bundle.horizons)
        return volatility_output(raw, periods_per_year)

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict | None = None,
    ) -> pd.DataFrame:
        from crypto_analytics.contract import PERIODS_PER_YEAR

        return self.forecast_panel(Panel.from_features(model_input), PERIODS_PER_YEAR)


def volatility_output(raw: pd.DataFrame, periods_per_year: int) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "symbol": raw["symbol"].astype(str),
            "as_of_date": pd.to_datetime(raw["origin"]),
            "horizon_days": raw["horizon"].astype("int64"),
            "target_date": pd.to_datetime(raw["target_date"]),
            "volatility_annualised": annualised(
                raw["variance_h"], raw["horizon"], periods_per_year
            ),
            "variance_h": raw["variance_h"].astype(float),
        }
    )
    return out.reset_index(drop=True).loc[:, VOLATILITY_OUTPUT]
