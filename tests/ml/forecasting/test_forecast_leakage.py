"""A forecast made at cut-off t is identical when every row after t is changed.

For every model family: the fit (at a cut-off) and the forecast (from an origin) are repeated on
a panel whose rows after that day were replaced by other prices and indicators; nothing may
move. The ensemble's calibration is checked the same way in test_forecast_conformal.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.catalogue import price_family, volatility_family
from crypto_ml.forecasting.panel import Panel
from forecast_testdata import HORIZONS, fast_ml

FAMILIES = ["naive", "drift", "prophet", "lstm", "gbm"]


def _rewrite_after(features: pd.DataFrame, day: pd.Timestamp, seed: int) -> Panel:
    """The same rows up to `day`; every later row gets another close and other indicators."""
    rng = np.random.default_rng(seed)
    changed = features.copy()
    later = changed["date"] > day
    changed.loc[later, "close"] *= np.exp(rng.normal(0, 0.3, later.sum()))
    for column in ("rsi_14", "bb_percent_b", "market_cap", "sma_20"):
        changed[column] = np.where(later, rng.uniform(1, 100, len(changed)), 50.0)
    return Panel.from_features(changed)


@pytest.fixture(scope="module")
def features(walk_features: pd.DataFrame) -> pd.DataFrame:
    rows = walk_features.copy()
    for column in ("rsi_14", "bb_percent_b", "market_cap", "sma_20"):
        rows[column] = 50.0
    return rows


@pytest.mark.parametrize("name", FAMILIES)
def test_forecast_at_origin_ignores_every_later_row(features, name):
    panel = Panel.from_features(features)
    family = price_family(name, fast_ml())
    cutoff = pd.Timestamp("2024-03-20")
    origin = cutoff + pd.Timedelta(days=6)
    symbols = ["AAA", "BBB", "CCC"]
    fitted = family.fit(panel, cutoff, symbols).fitted
    origins = {s: pd.DatetimeIndex([origin]) for s in symbols}
    expected = fitted.forecast(panel, origins, HORIZONS)
    assert len(expected) == 9
    # the intervals are compared too, so they must exist (calibrated, not missing)
    assert expected[["q025", "q10", "q90", "q975"]].notna().all().all()
    changed = fitted.forecast(_rewrite_after(features, origin, seed=1), origins, HORIZONS)
    pd.testing.assert_frame_equal(changed, expected)
    # and the fit itself: refitted on a panel rewritten after the cut-off, same forecasts
    refit = family.fit(_rewrite_after(features, cutoff, seed=2), cutoff, symbols).fitted
    pd.testing.assert_frame_equal(refit.forecast(panel, origins, HORIZONS), expected)


def test_garch_forecast_ignores_every_later_row(features):
    panel = Panel.from_features(features)
    family = volatility_family(fast_ml())
    cutoff = pd.Timestamp("2024-03-20")
    origin = cutoff + pd.Timedelta(days=6)
    fitted, _ = family.fit(panel, cutoff, ["AAA", "CCC"])
    origins = {s: pd.DatetimeIndex([origin]) for s in ["AAA", "CCC"]}
    expected = fitted.forecast(panel, origins, HORIZONS)
    assert len(expected) == 6
    changed = fitted.forecast(_rewrite_after(features, origin, seed=3), origins, HORIZONS)
    pd.testing.assert_frame_equal(changed, expected)
    refit, _ = family.fit(_rewrite_after(features, cutoff, seed=4), cutoff, ["AAA", "CCC"])
    pd.testing.assert_frame_equal(refit.forecast(panel, origins, HORIZONS), expected)
