"""Volatility spikes: realised volatility equals its definition (sample std x sqrt(365)), the
baseline is the median over the history before the window, and gaps are never bridged."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crypto_analytics.alerts.rules import parse_rules
from crypto_analytics.alerts.volatility import (
    realised_volatility,
    spike_observations,
    volatility_spikes,
)
from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_analytics.errors import ConfigError


def returns_frame(values: dict[str, list[float]]) -> pd.DataFrame:
    length = len(next(iter(values.values())))
    index = pd.date_range("2024-01-01", periods=length, freq="D")
    return pd.DataFrame(values, index=index)


def test_realised_volatility_is_the_annualised_sample_std():
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.03, 40)
    vol = realised_volatility(returns_frame({"BTC": list(r)}), 7)
    expected = np.std(r[-7:], ddof=1) * math.sqrt(365)
    assert vol["BTC"].iloc[-1] == pytest.approx(expected, rel=1e-12)
    assert PERIODS_PER_YEAR == 365
    assert vol["BTC"].iloc[:6].isna().all()
    with pytest.raises(ConfigError):
        realised_volatility(returns_frame({"BTC": list(r)}), 1)


def test_spike_ratio_against_the_median_of_the_history_before_the_window():
    rng = np.random.default_rng(11)
    calm = rng.normal(0, 0.01, 60)
    wild = rng.normal(0, 0.05, 5)
    r = np.concatenate([calm, wild])
    spike = volatility_spikes(returns_frame({"BTC": list(r)}), window_days=5, history_days=50)[
        "BTC"
    ]
    assert spike is not None
    series = pd.Series(r)
    rolling = series.rolling(5).std(ddof=1) * math.sqrt(365)
    assert spike.current == pytest.approx(rolling.iloc[-1])
    history = rolling.iloc[-55:-5]  # the 50 values before the window, none overlapping it
    assert spike.baseline == pytest.approx(history.median())
    assert spike.n_history == 50
    assert spike.ratio == pytest.approx(rolling.iloc[-1] / history.median())
    assert spike.ratio > 2.5  # returns five times as volatile: a clear spike


def test_gaps_leave_no_current_value_and_shrink_the_history():
    r = list(np.random.default_rng(5).normal(0, 0.02, 40))
    with_gap = r.copy()
    with_gap[-2] = np.nan  # a missing day inside the current window
    older_gap = r.copy()
    older_gap[10] = np.nan
    spikes = volatility_spikes(returns_frame({"A": with_gap, "B": older_gap}), 5, 30)
    assert spikes["A"] is None
    assert spikes["B"] is not None and spikes["B"].n_history == 30 - 5


def test_returns_must_be_on_consecutive_days():
    frame = returns_frame({"A": [0.01] * 10}).drop(pd.Timestamp("2024-01-05"))
    with pytest.raises(ConfigError, match="consecutive calendar days"):
        volatility_spikes(frame, 3, 5)


def test_observations_fire_on_the_ratio_and_need_enough_history():
    rng = np.random.default_rng(1)
    spiky = np.concatenate([rng.normal(0, 0.01, 100), rng.normal(0, 0.06, 7)])
    calm = rng.normal(0, 0.01, 107)
    short = np.concatenate([[np.nan] * 95, rng.normal(0, 0.01, 12)])
    rule = parse_rules(
        "rules: [{id: v, type: volatility_spike, window_days: 7, history_days: 90, ratio: 2,"
        " min_history: 30}]"
    ).rules[0]
    frame = returns_frame({"SPIKY": list(spiky), "CALM": list(calm), "NEW": list(short)})
    by = {o.subject: o for o in spike_observations(rule, frame, "test")}
    assert by["SPIKY"].status == "firing" and by["SPIKY"].value > 2
    assert by["CALM"].status == "ok" and by["CALM"].value < 2
    assert by["NEW"].status == "no_data" and "the rule needs 30" in by["NEW"].message
    assert by["SPIKY"].observed_at == pd.Timestamp("2024-04-17", tz="UTC")  # the day after the last
