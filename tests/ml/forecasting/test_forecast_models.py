"""Each model on small real series (the last 600 days of BTC, ETH and SOL on Binance).

What is checked: the forecasts exist for every token and horizon, are finite, their quantiles are
ordered, they are on the token's price scale, runs are deterministic, and GARCH and Prophet equal
their libraries' own answers (our wrappers add no arithmetic error).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.base import last_origins
from crypto_ml.forecasting.boosting import permutation_importance_table
from crypto_ml.forecasting.catalogue import price_family, volatility_family
from crypto_ml.forecasting.features import FEATURE_NAMES
from crypto_ml.forecasting.garch import annualised
from forecast_testdata import HORIZONS, fast_ml

from crypto_analytics.contract import PERIODS_PER_YEAR

pytestmark = pytest.mark.shared_data
QUANTILES = ["q025", "q10", "point", "q90", "q975"]


@pytest.mark.parametrize("name", ["naive", "drift", "prophet", "lstm", "gbm"])
def test_every_model_forecasts_every_token_and_horizon(real_panel, name):
    family = price_family(name, fast_ml())
    cutoff = real_panel.as_of - pd.Timedelta(days=40)
    result = family.fit(real_panel, cutoff, real_panel.symbols)
    assert result.skips == []
    fitted = result.fitted
    origins = {s: pd.date_range(cutoff, periods=10, freq="D") for s in real_panel.symbols}
    forecasts = fitted.forecast(real_panel, origins, HORIZONS)
    assert len(forecasts) == 3 * 10 * 3
    values = forecasts[QUANTILES].to_numpy()
    assert np.isfinite(values).all()
    ordered = forecasts[["q025", "q10", "q90", "q975"]].to_numpy()
    assert (np.diff(ordered, axis=1) >= -1e-12).all()
    assert (
        (forecasts["q025"] <= forecasts["point"]) & (forecasts["point"] <= forecasts["q975"])
    ).all()
    one_day = forecasts.loc[forecasts["horizon"] == 1]
    assert (np.abs(one_day["point"] - one_day["base"]) < math.log(1.2)).all()  # price scale
    wider = forecasts.pivot_table(index=["symbol", "origin"], columns="horizon",
                                  values="q975", aggfunc="first")  # fmt: skip
    narrower = forecasts.pivot_table(index=["symbol", "origin"], columns="horizon",
                                     values="q025", aggfunc="first")  # fmt: skip
    # a month out is more uncertain than a day out
    assert ((wider[30] - narrower[30]) > (wider[1] - narrower[1])).mean() > 0.9


def test_lstm_training_is_deterministic(real_panel):
    family = price_family("lstm", fast_ml())
    cutoff = real_panel.as_of - pd.Timedelta(days=40)
    first = family.fit(real_panel, cutoff, real_panel.symbols).fitted
    second = family.fit(real_panel, cutoff, real_panel.symbols).fitted
    for key, tensor in first.state_dict.items():
        assert (tensor == second.state_dict[key]).all(), key
    origins = last_origins(real_panel, real_panel.symbols)
    pd.testing.assert_frame_equal(
        first.forecast(real_panel, origins, HORIZONS),
        second.forecast(real_panel, origins, HORIZONS),
    )


def test_gbm_permutation_importance_covers_every_feature(real_panel):
    family = price_family("gbm", fast_ml())
    cutoff = real_panel.as_of - pd.Timedelta(days=60)
    fitted = family.fit(real_panel, cutoff, real_panel.symbols).fitted
    origins = {s: pd.date_range(cutoff, periods=20, freq="D") for s in real_panel.symbols}
    table = permutation_importance_table(fitted, real_panel, origins, repeats=2, seed=0)
    assert set(table["horizon"]) == set(HORIZONS)
    assert sorted(table.loc[table["horizon"] == 7, "feature"]) == sorted(fitted.features)
    # these frames carry no gold indicators: the models use the features computed from prices
    assert set(FEATURE_NAMES) - set(fitted.features) == {
        "volatility_90d", "rsi_14", "macd_histogram_rel", "bb_percent_b", "bb_bandwidth",
        "close_vs_sma_20", "close_vs_sma_50", "close_vs_sma_200", "drawdown", "log_market_cap",
    }  # fmt: skip
    assert (table["importance_std"] >= 0).all()


def test_garch_equals_arch_and_annualises_with_365_days(real_panel):
    from arch import arch_model

    family = volatility_family(fast_ml())
    fitted, skips = family.fit(real_panel, real_panel.as_of, ["BTC"])
    assert skips == []
    ours = fitted.forecast(real_panel, last_origins(real_panel, ["BTC"]), HORIZONS)
    returns = real_panel["BTC"].frame["log_return"].dropna() * 100
    returns = returns.loc[returns.index > real_panel.as_of - pd.Timedelta(days=family.history_days)]
    reference = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(
        disp="off", options={"maxiter": 500}
    )
    variance = reference.forecast(horizon=30, reindex=False).variance.iloc[-1].to_numpy() / 1e4
    for h in HORIZONS:
        row = ours.loc[ours["horizon"] == h].iloc[0]
        assert row["variance_h"] == pytest.approx(variance[:h].sum(), rel=1e-6)
        expected = math.sqrt(365 / h * variance[:h].sum())
        assert annualised(row["variance_h"], h, PERIODS_PER_YEAR) == pytest.approx(expected)


def test_prophet_is_re_anchored_on_the_last_close(real_panel):
    family = price_family("prophet", fast_ml())
    fitted = family.fit(real_panel, real_panel.as_of, ["ETH"]).fitted
    origin = real_panel["ETH"].last_day
    forecasts = fitted.forecast(real_panel, {"ETH": pd.DatetimeIndex([origin])}, [7])
    model = fitted.model("ETH")
    yhat = model.predict(pd.DataFrame({"ds": [origin, origin + pd.Timedelta(days=7)]}))["yhat"]
    expected = real_panel["ETH"].frame.loc[origin, "log_close"] + yhat.iloc[1] - yhat.iloc[0]
    assert forecasts["point"].iloc[0] == pytest.approx(expected, rel=1e-12)


def test_prophets_interval_scale_widens_its_radii_about_the_point(real_panel):
    family = price_family("prophet", fast_ml())
    fitted = family.fit(real_panel, real_panel.as_of, ["ETH"]).fitted
    origins = {"ETH": pd.DatetimeIndex([real_panel["ETH"].last_day])}
    plain = fitted.forecast(real_panel, origins, [1, 30]).set_index("horizon")
    fitted.interval_scale = {30: 1.6}
    scaled = fitted.forecast(real_panel, origins, [1, 30]).set_index("horizon")
    assert scaled["point"].tolist() == plain["point"].tolist()
    for column in ("q025", "q10", "q90", "q975"):
        radius = plain[column] - plain["point"]
        assert scaled.loc[30, column] - scaled.loc[30, "point"] == pytest.approx(
            1.6 * radius[30], rel=1e-12
        )
        assert scaled.loc[1, column] == plain.loc[1, column]  # no scale for 1 day: unchanged
