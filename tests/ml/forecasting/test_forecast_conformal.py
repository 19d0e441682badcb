"""Conformal calibration on synthetic residuals with known quantiles, and the ensemble's weights."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
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
    state = fit_ensemble(history, cutoff, calibration_days=10_000, members=["good", "bad"])
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
    state = fit_ensemble(history, cutoff, calibration_days=10_000, members=["good", "bad"])
    # 45 origins have a target on or before the cut-off
    assert state.n_calibration[1] == 45
    later = history.assign(point=np.where(history["target_date"] > cutoff, 99.0, history["point"]))
    again = fit_ensemble(later, cutoff, calibration_days=10_000, members=["good", "bad"])
    assert again.radii == state.radii
    assert math.isfinite(state.radii[(1, 80)])
