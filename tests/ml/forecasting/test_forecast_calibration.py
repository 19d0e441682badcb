"""Where interval widths come from: normalised moves, periods, empirical offsets, the random
walk's pooled scores (known quantiles on synthetic walks), and the conformalised boosting tails."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.boosting import GbmModel
from crypto_ml.forecasting.calibration import (
    MIN_CHANGES,
    calibration_periods,
    calibration_window,
    empirical_offsets,
    normalised_changes,
    random_walk_fallback,
    random_walk_scores,
)
from crypto_ml.forecasting.catalogue import price_family
from crypto_ml.forecasting.conformal import conformal_radius
from crypto_ml.forecasting.panel import Panel, TokenSeries
from forecast_testdata import fast_ml

Z80, Z95 = 1.2815515655446004, 1.959963984540054


def _token(log_close: np.ndarray, sigma: np.ndarray, start: str = "2024-01-01") -> TokenSeries:
    days = pd.date_range(start, periods=len(log_close), freq="D")
    frame = pd.DataFrame({"log_close": log_close, "sigma": sigma}, index=days)
    frame["observed"] = np.isfinite(frame["log_close"])
    return TokenSeries("AAA", False, frame)


def _walks(symbols: int, days: int, seed: int, daily_sd: float = 0.03) -> pd.DataFrame:
    """Gaussian random walks (constant volatility), one stablecoin pinned near 1."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-01", periods=days, freq="D")
    frames = [
        pd.DataFrame(
            {
                "symbol": f"T{k:02d}",
                "date": dates,
                "is_stablecoin": False,
                "close": np.exp(np.cumsum(rng.normal(0, daily_sd, days))),
            }
        )  # fmt: skip
        for k in range(symbols)
    ]
    frames.append(pd.DataFrame({"symbol": "USDX", "date": dates, "is_stablecoin": True,
                                "close": 1 + rng.normal(0, 1e-4, days)}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_periods_count_distinct_origin_days_per_horizon():
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    two_tokens = pd.Series(days.append(days))  # 120 residuals, 60 distinct days
    assert calibration_periods(two_tokens, 30) == 2.0
    assert calibration_periods(two_tokens, 1) == 60.0
    assert calibration_window(365, 30, 20) == 600
    assert calibration_window(365, 7, 20) == 365


def test_normalised_changes_are_moves_in_units_of_the_origins_sigma_and_never_bridge_a_gap():
    log_close = np.array([0.0, 0.1, 0.3, np.nan, 0.2, 0.6])
    sigma = np.array([0.1, 0.1, 0.2, np.nan, 0.0, 0.1])
    moves = normalised_changes(_token(log_close, sigma), 1)
    assert moves.iloc[0] == pytest.approx(1.0)  # 0.1 / (0.1 × 1)
    assert moves.iloc[1] == pytest.approx(2.0)  # 0.2 / 0.1
    assert np.isnan(moves.iloc[2]) and np.isnan(moves.iloc[3])  # into and out of the gap
    assert np.isnan(moves.iloc[4])  # sigma 0: no unit
    two_day = normalised_changes(_token(log_close, sigma), 2)
    assert two_day.iloc[0] == pytest.approx(0.3 / (0.1 * math.sqrt(2)))


def test_empirical_offsets_are_quantiles_of_the_trailing_moves_times_todays_sigma():
    rng = np.random.default_rng(0)
    n = 200
    sigma = np.where(np.arange(n) < 100, 0.01, 0.04)  # a calm half, then a wild one
    z = rng.standard_t(5, n)
    log_close = np.concatenate([[0.0], np.cumsum(z[:-1] * sigma[:-1])])  # move i: z_i × sigma_i
    token = _token(log_close, sigma)
    levels = [0.1, 0.9]
    offsets, enough = empirical_offsets(token, np.array([20, 150, 199]), 1, levels, window=60)
    assert not enough[0]  # 20 moves < MIN_CHANGES
    assert np.isnan(offsets[:, 0]).all()
    for column, position in ((1, 150), (2, 199)):
        moves = z[position - 60 : position]  # the 60 moves that ended by the origin
        expected = (np.quantile(moves, levels) - moves.mean()) * sigma[position]
        np.testing.assert_allclose(offsets[:, column], expected, rtol=1e-12)
    assert MIN_CHANGES <= 60


def test_random_walk_scores_have_the_normal_quantiles_on_gaussian_walks():
    panel = Panel.from_features(_walks(symbols=12, days=900, seed=1))
    cutoff = panel.as_of
    for h in (1, 7):
        rw = random_walk_scores(panel, cutoff, h, window_days=800)
        # sigma is estimated from 30 returns, so the scores are a little heavier-tailed than |N(0,1)|
        assert conformal_radius(rw.scores, 0.8) == pytest.approx(Z80, rel=0.06)
        assert conformal_radius(rw.scores, 0.95) == pytest.approx(Z95, rel=0.08)
        assert rw.periods == pytest.approx((800 - h) / h, abs=1 / h)  # origins in the window
        # one score per token (the stablecoin is left out) and origin whose target is known
        assert len(rw.scores) == 12 * (800 - h)


def test_random_walk_scores_ignore_every_row_after_the_cutoff():
    rows = _walks(symbols=4, days=700, seed=2)
    panel = Panel.from_features(rows)
    cutoff = pd.Timestamp("2021-10-01")  # 639 days in: a 600-day window fits with sigma known
    changed = rows.copy()
    later = changed["date"] > cutoff
    changed.loc[later, "close"] *= np.exp(np.random.default_rng(3).normal(0, 0.5, later.sum()))
    before = random_walk_fallback(panel, cutoff, [1, 7, 30], 365, 20)
    after = random_walk_fallback(Panel.from_features(changed), cutoff, [1, 7, 30], 365, 20)
    for h in (1, 7, 30):
        np.testing.assert_array_equal(before[h].scores, after[h].scores)
    assert len(before[30].scores) == 4 * (600 - 30)  # 600 days back at 30 days ahead


def _noise_rows(rng: np.random.Generator, days: int, start: str) -> pd.DataFrame:
    """Rows of a pooled boosting fit whose features are noise: z ~ N(0, 1) whatever they say."""
    dates = pd.date_range(start, periods=days, freq="D")
    index = pd.MultiIndex.from_product([["AAA"], dates], names=["symbol", "date"])
    return pd.DataFrame(
        {"f1": rng.standard_normal(days), "f2": rng.standard_normal(days),
         "z_1": rng.standard_normal(days)},
        index=index,
    )  # fmt: skip


def test_conformalised_boosting_tails_reach_nominal_coverage_where_the_raw_ones_miss():
    rng = np.random.default_rng(6)
    # small leaves and many rounds: the tail models fit noise and are over-confident
    gbm = fast_ml().gbm.model_copy(
        update={
            "max_iter": 60,
            "min_samples_leaf": 5,
            "max_leaf_nodes": 31,
            "calibration_days": 365,
        }
    )
    family = price_family("gbm", fast_ml(gbm=gbm, min_calibration_periods=20))
    train = _noise_rows(rng, 1500, "2020-01-01")
    cutoff = train.index.get_level_values("date").max() + pd.Timedelta(days=1)
    corrections = family.conformal_corrections(train, ["f1", "f2"], 1, cutoff)
    assert set(corrections) == {80, 95}
    models = {
        c: family._model(level).fit(train[["f1", "f2"]].to_numpy(), train["z_1"].to_numpy())
        for c, level in {"q025": 0.025, "q10": 0.1, "point": 0.5, "q90": 0.9, "q975": 0.975}.items()
    }
    fresh = _noise_rows(rng, 20_000, "2030-01-01")
    x, z = fresh[["f1", "f2"]].to_numpy(), fresh["z_1"].to_numpy()
    raw = np.sort(np.column_stack([models[c].predict(x) for c in models]), axis=1)
    model = GbmModel(["AAA"], [1], {}, 365, 1, ["f1", "f2"],
                     {(1, k): v for k, v in corrections.items()})  # fmt: skip
    calibrated = model._calibrated(1, raw)
    raw80 = np.mean((raw[:, 1] <= z) & (z <= raw[:, 3]))
    raw95 = np.mean((raw[:, 0] <= z) & (z <= raw[:, 4]))
    assert raw80 < 0.77 and raw95 < 0.93  # the miss the correction is for
    assert np.mean((calibrated[:, 1] <= z) & (z <= calibrated[:, 3])) == pytest.approx(
        0.8, abs=0.03
    )
    assert np.mean((calibrated[:, 0] <= z) & (z <= calibrated[:, 4])) == pytest.approx(
        0.95, abs=0.02
    )
    np.testing.assert_array_equal(calibrated[:, 2], raw[:, 2])  # the median is untouched


def test_boosting_without_enough_history_to_calibrate_has_no_interval_not_a_raw_one():
    rng = np.random.default_rng(7)
    gbm = fast_ml().gbm.model_copy(update={"calibration_days": 365})
    family = price_family("gbm", fast_ml(gbm=gbm, min_calibration_periods=20))
    train = _noise_rows(rng, 300, "2020-01-01")  # a 365-day held-out window does not fit
    cutoff = train.index.get_level_values("date").max() + pd.Timedelta(days=1)
    assert family.conformal_corrections(train, ["f1", "f2"], 1, cutoff) == {}
    model = GbmModel(["AAA"], [1], {}, 365, 1, ["f1", "f2"], {})
    quantiles = model._calibrated(1, np.array([[-2.0, -1.0, 0.0, 1.0, 2.0]]))
    assert quantiles[0, 2] == 0.0
    assert np.isnan(quantiles[0, [0, 1, 3, 4]]).all()


def test_boosting_calibration_leaves_out_a_feature_that_only_varies_in_the_held_out_window():
    rng = np.random.default_rng(8)
    gbm = fast_ml().gbm.model_copy(update={"calibration_days": 120})
    family = price_family("gbm", fast_ml(gbm=gbm, min_calibration_periods=20))
    train = _noise_rows(rng, 400, "2020-01-01")
    cutoff = train.index.get_level_values("date").max() + pd.Timedelta(days=1)
    dates = train.index.get_level_values("date")
    # missing in every row older than the held-out window (a long indicator's warm-up)
    train.loc[dates <= cutoff - pd.Timedelta(days=122), "f2"] = np.nan
    corrections = family.conformal_corrections(train, ["f1", "f2"], 1, cutoff)
    assert set(corrections) == {80, 95}
    assert all(math.isfinite(q) for q in corrections.values())
    # and with no feature varying before the window there is nothing to fit: no correction
    train.loc[dates <= cutoff - pd.Timedelta(days=122), "f1"] = 0.0
    assert family.conformal_corrections(train, ["f1", "f2"], 1, cutoff) == {}
