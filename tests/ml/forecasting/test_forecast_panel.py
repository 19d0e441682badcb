"""The panel keeps gaps explicit, returns follow the one gap definition, bad rows are refused, and
too little history is a logged skip, never a crash."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from crypto_ml.errors import InvalidInput, NotEnoughData
from crypto_ml.forecasting.catalogue import price_family
from crypto_ml.forecasting.forecasts import FORECAST_COLUMNS
from crypto_ml.forecasting.panel import Panel
from crypto_ml.forecasting.policy import is_constant, stale_skip, training_skip
from forecast_testdata import fast_ml, random_walk_features


def test_a_gap_stays_a_gap_and_the_return_after_it_is_missing(walk_panel):
    bbb = walk_panel["BBB"].frame
    missing = pd.date_range("2024-03-01", periods=3, freq="D")
    assert bbb.loc[missing, "close"].isna().all()
    assert not bbb.loc[missing, "observed"].any()
    after = pd.Timestamp("2024-03-04")
    assert np.isnan(bbb.loc[after, "log_return"])  # not a 4-day move counted as one day
    next_day = after + pd.Timedelta(days=1)
    expected = np.log(bbb.loc[next_day, "close"] / bbb.loc[after, "close"])
    assert bbb.loc[next_day, "log_return"] == pytest.approx(expected, rel=1e-12)
    # everywhere else the return is the consecutive-day log return
    aaa = walk_panel["AAA"].frame
    np.testing.assert_allclose(
        aaa["log_return"].iloc[1:], np.diff(np.log(aaa["close"].to_numpy())), rtol=1e-12
    )


def test_sigma_is_trailing_and_needs_twenty_returns(walk_panel):
    frame = walk_panel["AAA"].frame
    assert frame["sigma"].iloc[:20].isna().all()
    day = frame.index[100]
    window = frame["log_return"].loc[day - pd.Timedelta(days=29) : day]
    assert frame.loc[day, "sigma"] == pytest.approx(window.std(), rel=1e-12)


def test_truncate_keeps_rows_up_to_the_day(walk_panel):
    cut = walk_panel.truncate(pd.Timestamp("2023-06-30"))
    assert cut.as_of == pd.Timestamp("2023-06-30")
    assert all(t.last_day <= pd.Timestamp("2023-06-30") for t in cut)
    # a token whose last rows fall in a gap ends at its last observed day
    inside_gap = walk_panel.truncate(pd.Timestamp("2024-03-02"))
    assert inside_gap["BBB"].last_day == pd.Timestamp("2024-02-29")


def test_empty_gold_is_a_clear_error():
    empty = pd.DataFrame(columns=["symbol", "date", "close"])
    with pytest.raises(NotEnoughData, match="token_daily_features is empty.*dbt build"):
        Panel.from_features(empty)


def test_bad_rows_are_refused_naming_the_problem():
    rows = random_walk_features(["AAA"], 50)
    with pytest.raises(InvalidInput, match="duplicates"):
        Panel.from_features(pd.concat([rows, rows.head(1)]))
    bad = rows.copy()
    bad.loc[3, "close"] = -1.0
    with pytest.raises(InvalidInput, match="closes must be positive"):
        Panel.from_features(bad)
    with pytest.raises(InvalidInput, match=r"lack the columns \['close'\]"):
        Panel.from_features(rows.drop(columns=["close"]))


def test_nan_closes_become_missing_days_with_a_warning(caplog):
    rows = random_walk_features(["AAA"], 50)
    rows.loc[10, "close"] = np.nan
    with caplog.at_level(logging.WARNING):
        panel = Panel.from_features(rows)
    assert "1 feature rows have no close" in caplog.text
    assert not panel["AAA"].frame["observed"].iloc[10]
    assert panel["AAA"].observed_count() == 49


def test_policy_reasons(walk_panel):
    cutoff = walk_panel.as_of
    stable = training_skip(walk_panel["USDX"], "prophet", cutoff, 60)
    assert stable is not None and "stablecoin (pegged)" in stable.reason
    assert training_skip(walk_panel["USDX"], "naive", cutoff, 60) is None
    short = training_skip(walk_panel["AAA"], "lstm", pd.Timestamp("2023-02-15"), 180)
    assert short is not None and short.reason == "46 daily closes up to 2023-02-15, lstm needs 180"
    flat = Panel.from_features(
        pd.DataFrame(
            {"symbol": "FLAT", "date": pd.date_range("2024-01-01", periods=90), "close": 5.0}
        )  # fmt: skip
    )
    assert is_constant(flat["FLAT"])
    skip = training_skip(flat["FLAT"], "garch", flat.as_of, 30)
    assert skip is not None and skip.reason.startswith("constant price")
    stale = stale_skip(walk_panel["AAA"], "all", walk_panel.as_of + pd.Timedelta(days=5), 3)
    assert stale is not None and "5 days before" in stale.reason


@pytest.mark.parametrize("name", ["prophet", "lstm", "gbm"])
def test_a_fit_with_no_token_long_enough_forecasts_nothing_and_says_why(walk_panel, name):
    family = price_family(name, fast_ml())
    cutoff = pd.Timestamp("2023-02-15")  # 46 closes: every token is short for these models
    result = family.fit(walk_panel.truncate(cutoff), cutoff, walk_panel.symbols)
    assert result.fitted.symbols == []
    assert {s.symbol for s in result.skips} == set(walk_panel.symbols)
    origins = {s: pd.date_range(cutoff, periods=3, freq="D") for s in walk_panel.symbols}
    forecasts = result.fitted.forecast(walk_panel, origins, [1, 7, 30])
    assert forecasts.empty and list(forecasts.columns) == FORECAST_COLUMNS
