"""The model families by name, built from the `ml` settings: the one place that maps config to models."""

from __future__ import annotations

from crypto_analytics.config import MlConfig
from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_ml.errors import InvalidInput
from crypto_ml.forecasting.base import ModelFamily
from crypto_ml.forecasting.baselines import RandomWalk
from crypto_ml.forecasting.boosting import GbmFamily
from crypto_ml.forecasting.garch import GarchFamily
from crypto_ml.forecasting.lstm import LstmFamily
from crypto_ml.forecasting.prophet_model import ProphetFamily

#: Families fitted directly; `ensemble` is built from their backtest forecasts.
BASE_FAMILIES: tuple[str, ...] = ("naive", "drift", "prophet", "lstm", "gbm")
ENSEMBLE = "ensemble"
VOLATILITY = "garch"


def price_family(name: str, ml: MlConfig) -> ModelFamily:
    horizons = tuple(ml.horizons)
    history = ml.min_history_days
    if name in ("naive", "drift"):
        return RandomWalk(
            with_drift=name == "drift",
            window_days=ml.empirical_window_days,
            min_history=getattr(history, name),
            min_periods=ml.min_calibration_periods,
            horizons=horizons,
        )
    if name == "prophet":
        return ProphetFamily(
            min_history=history.prophet,
            history_days=ml.prophet.history_days,
            changepoint_prior_scale=ml.prophet.changepoint_prior_scale,
            seed=ml.seed,
            window_days=ml.empirical_window_days,
            min_periods=ml.min_calibration_periods,
            horizons=horizons,
        )
    if name == "lstm":
        return LstmFamily(
            min_history=history.lstm,
            horizons=horizons,
            window_days=ml.lstm.window_days,
            hidden_size=ml.lstm.hidden_size,
            layers=ml.lstm.layers,
            epochs=ml.lstm.epochs,
            batch_size=ml.lstm.batch_size,
            learning_rate=ml.lstm.learning_rate,
            history_days=ml.lstm.history_days,
            seed=ml.seed,
            threads=ml.threads,
            sample_stride_days=ml.lstm.sample_stride_days,
        )
    if name == "gbm":
        return GbmFamily(
            min_history=history.gbm,
            horizons=horizons,
            max_iter=ml.gbm.max_iter,
            learning_rate=ml.gbm.learning_rate,
            max_leaf_nodes=ml.gbm.max_leaf_nodes,
            min_samples_leaf=ml.gbm.min_samples_leaf,
            history_days=ml.gbm.history_days,
            seed=ml.seed,
            threads=ml.threads,
            periods_per_year=PERIODS_PER_YEAR,
            calibration_days=ml.gbm.calibration_days,
            min_periods=ml.min_calibration_periods,
        )
    raise InvalidInput(f"unknown model family {name!r}; choose from {', '.join(BASE_FAMILIES)}")


def volatility_family(ml: MlConfig) -> GarchFamily:
    return GarchFamily(min_history=ml.min_history_days.garch, history_days=ml.prophet.history_days)


def base_families(ml: MlConfig) -> list[str]:
    """The configured families that are fitted directly, in a stable order."""
    return [name for name in BASE_FAMILIES if name in ml.families]
