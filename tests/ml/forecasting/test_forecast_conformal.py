"""Conformal calibration on synthetic residuals with known quantiles, the ensemble's weights, and
its fallback to the random walk's scores when its own residuals span too few periods."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.calibration import ScoreSet
from crypto_ml.forecasting.conformal import conformal_radius, normalised_scores
from crypto_ml.forecasting.ensemble import ensemble_forecasts, fit_ensemble

Z80, Z95 = 1.2815515655446004, 1.959963984540054


def test_the_radius_is_the_finite_sample_quantile():
    scores = np.arange(1.0, 20.0)  # 19 scores
    # rank ceil(20 * 0.8) = 16 -> 16.0; ceil(20 * 0.95) = 19 -> 19.0
    assert conformal_radius(scores, 0.8) == 16.0
    assert conformal_radius(scores, 0.95) == 19.0
    assert conformal_radius(scores[:18], 0.95) is None  # n = 18 < 1 / 0.05 - 1
    assert conformal_radius(np.array([np.nan, 1.0, 2.0, 3.0, 4.0]), 0.5) == 3.0  # NaN ignored
    with pytest.raises(ValueError, match="coverage"):
        conformal_radius(scores, 1.0)


def test_on_gaussian_residuals_the_radius_is_the_normal_quantile_and_covers():
    rng = np.random.default_rng(0)
    calibration = np.abs(rng.standard_normal(20_000))
    r80, r95 = conformal_radius(calibration, 0.8), conformal_radius(calibration, 0.95)
    assert r80 == pytest.approx(Z80, abs=0.03)
    assert r95 == pytest.approx(Z95, abs=0.04)
    held_out = np.abs(rng.standard_normal(20_000))
    assert np.mean(held_out <= r80) == pytest.approx(0.80, abs=0.01)
    assert np.mean(held_out <= r95) == pytest.approx(0.95, abs=0.01)


def test_scores_are_errors_in_units_of_sigma_sqrt_h():
    scores = normalised_scores(np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0]),
                               np.array([0.5, 0.5, 0.0]), np.array([1, 4, 1]))  # fmt: skip
    np.testing.assert_allclose(scores[:2], [2.0, 1.0])
    assert np.isnan(scores[2])


def _members(rng: np.random.Generator, n: int, start: str) -> pd.DataFrame:
    """Two members on known residuals: `good` errs with sd 0.01, `bad` with sd 0.03 (sigma 0.01)."""
    origins = pd.date_range(start, periods=n, freq="D")
    y = np.zeros(n)
    rows = []
    for model, sd in (("good", 0.01), ("bad", 0.03)):
        rows.append(pd.DataFrame({
            "symbol": "AAA", "origin": origins, "horizon": 1,
            "target_date": origins + pd.Timedelta(days=1), "base": 0.0,
            "point": y + rng.normal(0, sd, n), "q025": np.nan, "q10": np.nan, "q90": np.nan,
            "q975": np.nan, "model": model, "y": y, "sigma": 0.01,
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def test_ensemble_weights_follow_inverse_error_and_intervals_reach_nominal_coverage():
    rng = np.random.default_rng(1)
    history = _members(rng, 3000, "2020-01-01")
    cutoff = history["target_date"].max()
    state = fit_ensemble(history, cutoff, 10_000, ["good", "bad"], min_periods=20, fallback={})
    assert state.calibration[1].source == "validation"
    weights = state.weights.set_index("model")["weight"]
    mae = history.assign(e=(history["point"] - history["y"]).abs()).groupby("model")["e"].mean()
    assert weights["good"] == pytest.approx((1 / mae["good"]) / (1 / mae["good"] + 1 / mae["bad"]))
    assert weights["good"] > 0.7
    future = _members(rng, 3000, "2030-01-01")
    combined = ensemble_forecasts(state, future)
    y = 0.0
    inside80 = ((combined["q10"] <= y) & (y <= combined["q90"])).mean()
    inside95 = ((combined["q025"] <= y) & (y <= combined["q975"])).mean()
    assert inside80 == pytest.approx(0.80, abs=0.03)
    assert inside95 == pytest.approx(0.95, abs=0.02)
    # a member missing at an origin: the others are renormalised, not treated as zero
    only_good = ensemble_forecasts(state, future.loc[future["model"] == "good"])
    good = future.loc[future["model"] == "good"].reset_index(drop=True)
    np.testing.assert_allclose(only_good["point"], good["point"], rtol=1e-12)


def test_calibration_uses_only_targets_known_at_the_cutoff():
    rng = np.random.default_rng(2)
    history = _members(rng, 100, "2020-01-01")
    cutoff = pd.Timestamp("2020-02-15")
    state = fit_ensemble(history, cutoff, 10_000, ["good", "bad"], min_periods=20, fallback={})
    # 45 origins have a target on or before the cut-off: 45 one-day periods, enough
    assert state.calibration[1].n_validation == 45
    assert state.calibration[1].source == "validation"
    later = history.assign(point=np.where(history["target_date"] > cutoff, 99.0, history["point"]))
    again = fit_ensemble(later, cutoff, 10_000, ["good", "bad"], min_periods=20, fallback={})
    assert again.radii == state.radii
    assert math.isfinite(state.radii[(1, 80)])


def _horizon_members(rng: np.random.Generator, origins: pd.DatetimeIndex, h: int) -> pd.DataFrame:
    """One member forecasting h days ahead, erring N(0, 1) in units of sigma × sqrt(h)."""
    sigma = 0.02
    return pd.DataFrame({
        "symbol": "AAA", "origin": origins, "horizon": h,
        "target_date": origins + pd.Timedelta(days=h), "base": 0.0, "point": 0.0,
        "q025": np.nan, "q10": np.nan, "q90": np.nan, "q975": np.nan, "model": "only",
        "y": rng.standard_normal(len(origins)) * sigma * math.sqrt(h), "sigma": sigma,
    })  # fmt: skip


def test_too_few_validation_periods_fall_back_to_the_random_walk_scores():
    rng = np.random.default_rng(3)
    # 90 days of 30-day residuals: 90 points, but only 3 non-overlapping 30-day periods
    history = _horizon_members(rng, pd.date_range("2024-01-01", periods=90, freq="D"), 30)
    cutoff = history["target_date"].max()
    fallback = {30: ScoreSet(np.abs(rng.standard_normal(20_000)), 400.0)}
    state = fit_ensemble(history, cutoff, 10_000, ["only"], min_periods=20, fallback=fallback)
    calibration = state.calibration[30]
    assert calibration.source == "random_walk"
    assert (calibration.n_validation, calibration.validation_periods) == (90, 3.0)
    assert (calibration.n_scores, calibration.periods) == (20_000, 400.0)
    assert state.radii[(30, 80)] == conformal_radius(fallback[30].scores, 0.8)
    assert state.radii[(30, 80)] == pytest.approx(Z80, abs=0.03)
    assert state.radii[(30, 95)] == pytest.approx(Z95, abs=0.05)
    # the intervals then reach nominal coverage on errors like the random walk's
    future = _horizon_members(rng, pd.date_range("2030-01-01", periods=20_000, freq="D"), 30)
    combined = ensemble_forecasts(state, future)
    y = future["y"].to_numpy()
    assert ((combined["q10"] <= y) & (y <= combined["q90"])).mean() == pytest.approx(0.8, abs=0.01)
    assert ((combined["q025"] <= y) & (y <= combined["q975"])).mean() == pytest.approx(
        0.95, abs=0.01
    )


def test_enough_validation_periods_calibrate_on_the_ensembles_own_residuals():
    rng = np.random.default_rng(4)
    # 700 days of 30-day residuals span 23 periods: the fallback is not read
    history = _horizon_members(rng, pd.date_range("2020-01-01", periods=700, freq="D"), 30)
    cutoff = history["target_date"].max()
    fallback = {30: ScoreSet(np.full(1000, 50.0), 400.0)}
    state = fit_ensemble(history, cutoff, 10_000, ["only"], min_periods=20, fallback=fallback)
    assert state.calibration[30].source == "validation"
    assert state.calibration[30].periods == pytest.approx(700 / 30)
    own = np.abs(history["y"].to_numpy()) / (0.02 * math.sqrt(30))
    assert state.radii[(30, 95)] == conformal_radius(own, 0.95)
    # and with a stricter minimum the same residuals are not enough
    strict = fit_ensemble(history, cutoff, 10_000, ["only"], min_periods=30, fallback=fallback)
    assert strict.calibration[30].source == "random_walk"
    assert strict.radii[(30, 95)] == 50.0


def test_no_scores_at_all_means_no_interval_not_a_guess():
    rng = np.random.default_rng(5)
    history = _horizon_members(rng, pd.date_range("2024-01-01", periods=60, freq="D"), 30)
    cutoff = history["target_date"].max()
    state = fit_ensemble(history, cutoff, 10_000, ["only"], min_periods=20, fallback={})
    assert state.calibration[30].source == "none"
    assert state.radii[(30, 80)] is None and state.radii[(30, 95)] is None
    future = _horizon_members(rng, pd.date_range("2030-01-01", periods=5, freq="D"), 30)
    combined = ensemble_forecasts(state, future)
    assert combined["point"].notna().all()
    assert combined[["q025", "q10", "q90", "q975"]].isna().all().all()


def _scaled_members(
    rng: np.random.Generator, origins: pd.DatetimeIndex, h: int, scales: dict[str, float]
) -> pd.DataFrame:
    """Members sharing one N(0, 1) error e per origin, member m erring scales[m] × e in units of
    sigma × sqrt(h): the weights are then exactly 1 / scale, and the ensemble's error a known
    multiple of the naive member's."""
    sigma = 0.02
    unit = sigma * math.sqrt(h)
    e = rng.standard_normal(len(origins))
    y = rng.standard_normal(len(origins)) * unit
    return pd.concat([
        pd.DataFrame({
            "symbol": "AAA", "origin": origins, "horizon": h,
            "target_date": origins + pd.Timedelta(days=h), "base": 0.0,
            "point": y - scale * e * unit, "q025": np.nan, "q10": np.nan, "q90": np.nan,
            "q975": np.nan, "model": model, "y": y, "sigma": sigma,
        })
        for model, scale in scales.items()
    ], ignore_index=True)  # fmt: skip


def test_the_random_walk_fallback_widens_by_the_ensembles_error_ratio():
    rng = np.random.default_rng(6)
    # naive errs e, `loud` 3e: weights 3/4 and 1/4, so the ensemble errs 1.5e, 1.5 x the naive
    scales = {"naive": 1.0, "loud": 3.0}
    history = _scaled_members(rng, pd.date_range("2024-01-01", periods=90, freq="D"), 30, scales)
    cutoff = history["target_date"].max()
    fallback = {30: ScoreSet(np.abs(rng.standard_normal(20_000)), 400.0)}
    state = fit_ensemble(history, cutoff, 10_000, list(scales), min_periods=20, fallback=fallback)
    calibration = state.calibration[30]
    assert calibration.source == "random_walk"
    assert calibration.error_ratio == pytest.approx(1.5)
    for coverage in (80, 95):
        assert state.radii[(30, coverage)] == pytest.approx(
            1.5 * conformal_radius(fallback[30].scores, coverage / 100)
        )
    # on new errors of the same kind the widened intervals reach nominal coverage
    future = _scaled_members(rng, pd.date_range("2030-01-01", periods=20_000, freq="D"), 30, scales)
    combined = ensemble_forecasts(state, future)
    y = future.drop_duplicates("origin")["y"].to_numpy()
    assert ((combined["q10"] <= y) & (y <= combined["q90"])).mean() == pytest.approx(0.8, abs=0.01)
    assert ((combined["q025"] <= y) & (y <= combined["q975"])).mean() == pytest.approx(
        0.95, abs=0.01
    )


def test_an_ensemble_better_than_the_random_walk_keeps_the_random_walks_radii():
    rng = np.random.default_rng(7)
    scales = {"naive": 1.0, "sharp": 0.2}  # the ensemble errs e/3: never narrowed on that
    history = _scaled_members(rng, pd.date_range("2024-01-01", periods=90, freq="D"), 30, scales)
    fallback = {30: ScoreSet(np.abs(rng.standard_normal(20_000)), 400.0)}
    state = fit_ensemble(
        history, history["target_date"].max(), 10_000, list(scales), min_periods=20,
        fallback=fallback,
    )  # fmt: skip
    assert state.calibration[30].error_ratio == 1.0
    assert state.radii[(30, 80)] == conformal_radius(fallback[30].scores, 0.8)
