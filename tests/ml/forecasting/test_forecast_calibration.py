"""Where interval widths come from: normalised moves, periods, empirical offsets, the pooled
spreads and the random walk's pooled scores (known quantiles on synthetic walks and on
t-distributed moves), and the conformalised boosting tails."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.baselines import INTERVAL_LEVELS, RandomWalk, empirical_quantiles
from crypto_ml.forecasting.boosting import GbmModel
from crypto_ml.forecasting.calibration import (
    MIN_CHANGES,
    PooledSpreads,
    calibration_periods,
    calibration_window,
    empirical_offsets,
    normalised_changes,
    pooled_spreads,
    random_walk_fallback,
    random_walk_scores,
)
from crypto_ml.forecasting.catalogue import price_family
from crypto_ml.forecasting.conformal import conformal_radius
from crypto_ml.forecasting.panel import Panel, TokenSeries
from forecast_testdata import fast_ml, random_walk_features

Z80, Z95 = 1.2815515655446004, 1.959963984540054


def _token(
    log_close: np.ndarray,
    sigma: np.ndarray,
    start: str = "2024-01-01",
    symbol: str = "AAA",
    stablecoin: bool = False,
) -> TokenSeries:
    days = pd.date_range(start, periods=len(log_close), freq="D")
    frame = pd.DataFrame({"log_close": log_close, "sigma": sigma}, index=days)
    frame["observed"] = np.isfinite(frame["log_close"])
    return TokenSeries(symbol, stablecoin, frame)


def _t_panel(symbols: int, days: int, seed: int, start: str = "2020-01-01") -> tuple[Panel, dict]:
    """Tokens whose daily move i is z_i × sigma_i, z ~ t(4) scaled to unit variance, sigma known
    and different per token (0.5 % to 10 %) and per year: the normalised 1-day moves are t(4)
    draws whatever the token, so their pooled quantiles are t(4)'s. Returns (panel, z per token)."""
    rng = np.random.default_rng(seed)
    series, shocks = {}, {}
    for k in range(symbols):
        z = rng.standard_t(4, days) / math.sqrt(2)
        level = 0.005 * 20 ** (k / max(symbols - 1, 1))
        sigma = level * np.where((np.arange(days) // 365) % 2 == 0, 1.0, 3.0)
        log_close = np.concatenate([[0.0], np.cumsum(z[:-1] * sigma[:-1])])
        symbol = f"T{k:02d}"
        series[symbol] = _token(log_close, sigma, start, symbol)
        shocks[symbol] = z
    return Panel(series), shocks


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
    before = random_walk_fallback(panel, cutoff, [1, 7, 30])
    after = random_walk_fallback(Panel.from_features(changed), cutoff, [1, 7, 30])
    for h in (1, 7, 30):
        np.testing.assert_array_equal(before[h].scores, after[h].scores)
    # the whole history: origins from the first day with a sigma (row 20) to the cut-off less h
    assert len(before[30].scores) == 4 * (639 - 30 - 20 + 1)
    assert random_walk_scores(panel, cutoff, 30, window_days=600).scores.size == 4 * (600 - 30)


T4 = {0.025: -2.776445105, 0.1: -1.533206274, 0.9: 1.533206274, 0.975: 2.776445105}  # t(4)


def test_pooled_spreads_are_the_common_quantiles_of_moves_of_tokens_of_any_volatility():
    panel, _ = _t_panel(symbols=40, days=730, seed=11)
    levels = [q for _, q in INTERVAL_LEVELS]
    pooled = pooled_spreads(panel, panel.as_of, [1], levels, min_periods=20)
    # 40 × 729 moves of t(4) / sqrt(2): every token's volatility divided out
    expected = np.array([T4[q] / math.sqrt(2) for q in levels])
    np.testing.assert_allclose(pooled.spreads[1], expected, rtol=0.05)  # about 3 standard errors
    assert pooled.moves[1] == 40 * 729
    # one token's own 60 moves would be far off somewhere; the pool is not
    offsets = pooled.offsets(1, np.array([0.02, 0.0, np.nan]))
    np.testing.assert_allclose(offsets[:, 0], pooled.spreads[1] * 0.02)
    assert np.isnan(offsets[:, 1:]).all()  # no sigma, or zero: no interval
    assert pooled.offsets(7, np.array([0.02])) is None  # a horizon it was not read for


def test_pooled_intervals_cover_new_moves_at_nominal_where_each_tokens_own_year_does_not():
    """Fresh 30-day-like scarcity: each token has a year of 1-day moves in the calibration, and
    the tails of new draws are judged; the pooled interval reaches 80/95 %, while the extremes
    of a token's own few moves fall short at 95 % on average."""
    panel, shocks = _t_panel(symbols=30, days=420, seed=12)
    cutoff = panel.as_of - pd.Timedelta(days=400)  # each token: 19 known moves only
    levels = [q for _, q in INTERVAL_LEVELS]
    pooled = pooled_spreads(panel, cutoff, [1], levels, min_periods=19)
    assert pooled.periods[1] == pytest.approx(19.0)
    assert pooled.moves[1] == 30 * 19
    lo95, lo80, hi80, hi95 = (pooled.spreads[1][k] for k in range(4))
    fresh = np.concatenate([z[20:] for z in shocks.values()])  # moves after the cut-off
    assert np.mean((lo80 <= fresh) & (fresh <= hi80)) == pytest.approx(0.80, abs=0.04)
    assert np.mean((lo95 <= fresh) & (fresh <= hi95)) == pytest.approx(0.95, abs=0.02)
    own = []  # each token's own 95 % interval from its 19 known moves, on its new ones
    for z in shocks.values():
        lo, hi = np.quantile(z[:19], [0.025, 0.975])
        own.append(np.mean((lo <= z[20:]) & (z[20:] <= hi)))
    own95 = np.mean(own)
    assert own95 < 0.92  # the bias pooling removes: (n - 1)/(n + 1) = 0.9 for n = 19


def test_pooled_spreads_use_only_moves_ended_by_the_cutoff_of_every_token():
    panel, _ = _t_panel(symbols=5, days=400, seed=13)
    cutoff = panel.as_of - pd.Timedelta(days=50)
    levels = [q for _, q in INTERVAL_LEVELS]
    expected = pooled_spreads(panel, cutoff, [1, 7, 30], levels, min_periods=5)

    def with_jump(day: pd.Timestamp) -> Panel:
        """Another token (not the one forecast) jumps by 40 sigma at the close of `day`."""
        series = dict(panel.series)
        token = series["T03"]
        frame = token.frame.copy()
        frame.loc[frame.index >= day, "log_close"] += 40 * frame.loc[day, "sigma"]
        series["T03"] = TokenSeries(token.symbol, token.is_stablecoin, frame)
        return Panel(series)

    after = pooled_spreads(with_jump(cutoff + pd.Timedelta(days=1)), cutoff, [1, 7, 30], levels, 5)
    for h in (1, 7, 30):
        np.testing.assert_array_equal(after.spreads[h], expected.spreads[h])
        assert after.moves[h] == expected.moves[h]
    # the boundary is tight: the one move of each horizon ending on the cut-off day is known
    on_day = pooled_spreads(with_jump(cutoff), cutoff, [1, 7, 30], levels, 5)
    for h in (1, 7, 30):
        assert on_day.moves[h] == expected.moves[h]
        assert not np.allclose(on_day.spreads[h], expected.spreads[h])


def test_naive_intervals_come_from_the_pool_and_a_stablecoin_keeps_its_own(walk_panel):
    cutoff = pd.Timestamp("2024-03-20")
    symbols = ["AAA", "BBB", "CCC", "USDX"]
    fitted = (
        RandomWalk(False, 365, 60, min_periods=5, horizons=(1, 30))
        .fit(walk_panel, cutoff, symbols)
        .fitted
    )
    pooled = fitted.pooled
    assert isinstance(pooled, PooledSpreads) and set(pooled.spreads) == {1, 30}
    # the pool is the three walks', fixed at the cut-off (the stablecoin's peg is left out)
    truncated = walk_panel.truncate(cutoff)
    levels = [q for _, q in INTERVAL_LEVELS]
    no_peg = Panel({s: truncated[s] for s in ("AAA", "BBB", "CCC")})
    np.testing.assert_array_equal(
        pooled.spreads[30], pooled_spreads(no_peg, cutoff, [30], levels, 5).spreads[30]
    )
    origin = cutoff + pd.Timedelta(days=6)
    out = fitted.forecast(walk_panel, {s: pd.DatetimeIndex([origin]) for s in symbols}, [30])
    out = out.set_index("symbol")
    for symbol in ("AAA", "CCC"):
        sigma = walk_panel[symbol].frame.loc[origin, "sigma"]
        np.testing.assert_allclose(
            out.loc[symbol, "q975"] - out.loc[symbol, "point"],
            pooled.spreads[30][-1] * sigma * math.sqrt(30),
        )
    # the stablecoin's interval is its own moves' (a peg's are far narrower than the pool's)
    usdx = walk_panel["USDX"]
    position = usdx.frame.index.get_indexer([origin])
    own = empirical_quantiles(usdx, position, 30, np.zeros(1), 365, 5)
    assert out.loc["USDX", "q975"] - out.loc["USDX", "point"] == pytest.approx(own["q975"][0])


def test_a_pool_spanning_too_few_periods_leaves_each_token_its_own_moves():
    panel, _ = _t_panel(symbols=3, days=200, seed=14)
    levels = [q for _, q in INTERVAL_LEVELS]
    pooled = pooled_spreads(panel, panel.as_of, [1, 30], levels, min_periods=20)
    assert set(pooled.spreads) == {1}  # 170 origins / 30 < 20 periods at 30 days
    token = panel["T01"]
    position = np.array([199])
    with_pool = empirical_quantiles(token, position, 30, np.zeros(1), 365, 5, pooled)
    own = empirical_quantiles(token, position, 30, np.zeros(1), 365, 5)
    for column in ("q025", "q975"):
        np.testing.assert_array_equal(with_pool[column], own[column])


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


def test_boosting_leaves_out_a_feature_with_no_value_where_a_horizons_targets_are_known(caplog):
    # market cap arrives for the last 20 days only: it varies over the training rows, but every
    # row with a known 30-day target lacks it (scikit-learn cannot bin an all-missing column)
    features = random_walk_features(["AAA", "BBB"], 320)
    recent = features["date"] > features["date"].max() - pd.Timedelta(days=20)
    features["market_cap"] = np.where(recent, 1e9 * (1 + np.arange(len(features)) % 7), np.nan)
    panel = Panel.from_features(features)
    family = price_family("gbm", fast_ml())
    with caplog.at_level("INFO", logger="crypto_ml.forecasting.boosting"):
        fitted = family.fit(panel, panel.as_of, panel.symbols).fitted
    assert (
        "30 days ahead: no value in the training rows, left out: ['log_market_cap']" in caplog.text
    )
    assert "1 days ahead: no value" not in caplog.text  # 1-day targets reach the recent rows
    assert "log_market_cap" in fitted.features
    assert {h for h, _ in fitted.models} == {1, 7, 30}
    origins = {s: pd.DatetimeIndex([panel.as_of]) for s in panel.symbols}
    forecasts = fitted.forecast(panel, origins, [1, 7, 30])
    assert len(forecasts) == 6 and np.isfinite(forecasts["point"]).all()
