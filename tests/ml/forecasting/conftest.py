"""Fixtures for the forecasting tests (data helpers in forecast_testdata.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from crypto_ml.forecasting.panel import Panel
from forecast_testdata import random_walk_features, real_features


@pytest.fixture(scope="session")
def walk_features() -> pd.DataFrame:
    """500 days of three random-walk tokens, a stablecoin, and a 3-day gap in BBB."""
    return random_walk_features(stablecoin="USDX", gap=("BBB", "2024-03-01", 3))


@pytest.fixture(scope="session")
def walk_panel(walk_features: pd.DataFrame) -> Panel:
    return Panel.from_features(walk_features)


@pytest.fixture(scope="session")
def real_panel(shared_data) -> Panel:
    """The last 600 days of real daily Binance closes for BTC, ETH and SOL."""
    return Panel.from_features(real_features(shared_data, ["BTC", "ETH", "SOL"], last_days=600))


#: The ml settings of the pipeline tests, as environment overrides (the stages read settings).
FAST_ENV = {
    "CRYPTO_ML__FOLDS": "2",
    "CRYPTO_ML__FOLD_DAYS": "10",
    "CRYPTO_ML__LSTM__EPOCHS": "2",
    "CRYPTO_ML__LSTM__HIDDEN_SIZE": "8",
    "CRYPTO_ML__LSTM__WINDOW_DAYS": "20",
    "CRYPTO_ML__GBM__MAX_ITER": "15",
    "CRYPTO_ML__GBM__MIN_SAMPLES_LEAF": "20",
    "CRYPTO_ML__GBM__PERMUTATION_REPEATS": "2",
    "CRYPTO_ML__GBM__CALIBRATION_DAYS": "120",
    "CRYPTO_ML__MIN_CALIBRATION_PERIODS": "5",
    "CRYPTO_ML__PROPHET__HISTORY_DAYS": "400",
    "CRYPTO_ML__MIN_HISTORY_DAYS__PROPHET": "120",
    "CRYPTO_ML__MIN_HISTORY_DAYS__LSTM": "120",
    "CRYPTO_ML__MIN_HISTORY_DAYS__GBM": "120",
    "CRYPTO_ML__MIN_HISTORY_DAYS__GARCH": "150",
}


@pytest.fixture
def fast_ml_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Small models and folds for the pipeline tests; run folders and artifacts under tmp."""
    from crypto_analytics.config import get_settings

    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CRYPTO_ML__WORK_DIR", str(tmp_path / "ml"))
    monkeypatch.setenv("CRYPTO_ML__MLFLOW__ARTIFACTS_DIR", str(tmp_path / "mlflow"))
    get_settings.cache_clear()
