"""Fixtures for the portfolio tests (data helpers in portfolio_testdata.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from portfolio_testdata import DB_SYMBOLS, RUN_DATE, load_stand_in_gold, make_prices


@pytest.fixture
def gold_prices() -> pd.DataFrame:
    """Two years of daily closes before RUN_DATE (USDC pinned near 1)."""
    prices = make_prices(
        DB_SYMBOLS, RUN_DATE - timedelta(days=730), 730, seed=11, drift=0.0012, vol=0.035
    )
    rng = np.random.default_rng(3)
    prices["USDC"] = 1 + rng.normal(0, 0.0005, len(prices))
    return prices


@pytest.fixture
def stand_in_gold(warehouse_url: str, gold_prices: pd.DataFrame) -> Iterator[str]:
    load_stand_in_gold(warehouse_url, gold_prices)
    yield warehouse_url


@pytest.fixture
def portfolio_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Settings for the database tests: the DB symbols, a short backtest, reports under tmp."""
    from crypto_analytics.config import get_settings

    monkeypatch.setenv("CRYPTO_PORTFOLIO__SYMBOLS", '["' + '","'.join(DB_SYMBOLS) + '"]')
    monkeypatch.setenv("CRYPTO_PORTFOLIO__BACKTEST__LOOKBACK_DAYS", "120")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__MONTE_CARLO__PORTFOLIOS", "2000")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__MONTE_CARLO__DISPLAY_SAMPLE", "500")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__FRONTIER_POINTS", "12")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__REBALANCING__REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
