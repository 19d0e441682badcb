"""Prophet's borrowed random-walk radii, widened by its error ratio to the random walk on the
validation forecasts each cut-off knew (crypto_ml.forecasting.error_ratio)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.error_ratio import validation_ratios, widen_intervals
from crypto_ml.forecasting.folds import Fold
from crypto_ml.forecasting.pipeline import _calibration_params, widen_prophet_intervals
from crypto_ml.forecasting.prophet_model import ProphetModel

SIGMA = 0.02
H = 7


def _scored(origins: pd.DatetimeIndex, fold: int, scales: dict[str, float]) -> pd.DataFrame:
    """Forecasts whose errors are known multiples of one pattern: model m errs scales[m] x e,
    with radii of 0.1 (80 %) and 0.2 (95 %) about its point, as the random walk's would be."""
    e = np.where(np.arange(len(origins)) % 2 == 0, 1.0, -1.0) * SIGMA * np.sqrt(H)
    frames = []
    for model, scale in scales.items():
        point = -scale * e
        frames.append(pd.DataFrame({
            "symbol": "AAA", "origin": origins, "horizon": H,
            "target_date": origins + pd.Timedelta(days=H), "base": 0.0, "point": point,
            "q025": point - 0.2, "q10": point - 0.1, "q90": point + 0.1, "q975": point + 0.2,
            "model": model, "fold": fold, "y": 0.0, "sigma": SIGMA,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_the_ratio_reads_only_targets_known_at_the_cut_off():
    early = _scored(
        pd.date_range("2024-01-01", periods=40, freq="D"), 1, {"naive": 1, "prophet": 2}
    )
    late = _scored(pd.date_range("2024-03-01", periods=40, freq="D"), 2, {"naive": 1, "prophet": 5})
    scored = pd.concat([early, late], ignore_index=True)
    cutoff = early["target_date"].max()
    assert validation_ratios(scored, "prophet", cutoff, 365) == {H: pytest.approx(2.0)}
    everything = scored["target_date"].max()
    # 40 points at 2x and 40 at 5x: the mean error is 3.5x naive's
    assert validation_ratios(scored, "prophet", everything, 365) == {H: pytest.approx(3.5)}
    # nothing known yet, or a model better than the random walk: the random walk's radii
    assert validation_ratios(scored, "prophet", pd.Timestamp("2023-01-01"), 365) == {H: 1.0}
    sharp = _scored(early["origin"].unique(), 1, {"naive": 1, "prophet": 0.5})
    assert validation_ratios(sharp, "prophet", cutoff, 365) == {H: 1.0}


def test_widening_scales_every_quantiles_distance_from_the_point():
    frame = _scored(pd.date_range("2024-01-01", periods=3, freq="D"), 1, {"prophet": 1})
    wide = widen_intervals(frame, {H: 1.5})
    assert wide["point"].tolist() == frame["point"].tolist()
    np.testing.assert_allclose(wide["q90"] - wide["point"], 0.15)
    np.testing.assert_allclose(wide["q025"] - wide["point"], -0.3)
    assert widen_intervals(frame, {1: 3.0}).equals(frame)  # another horizon's ratio: unchanged


def test_prophets_backtest_and_final_fit_are_widened_by_what_each_cut_off_knew():
    first = _scored(
        pd.date_range("2024-01-01", periods=40, freq="D"), 1, {"naive": 1, "prophet": 2}
    )
    second = _scored(
        pd.date_range("2024-02-20", periods=30, freq="D"), 2, {"naive": 1, "prophet": 4}
    )
    scored = pd.concat([first, second], ignore_index=True)
    plan = [
        Fold(1, pd.Timestamp("2023-12-31"), pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-09")),
        Fold(2, pd.Timestamp("2024-02-19"), pd.Timestamp("2024-02-20"), pd.Timestamp("2024-03-20")),
    ]
    final = ProphetModel(["AAA"], {}, seed=0)
    as_of = scored["target_date"].max()
    out = widen_prophet_intervals(scored, plan, {"prophet": final}, as_of, 365)

    radius = (out["q90"] - out["point"]).round(12)
    is_prophet = out["model"] == "prophet"
    # fold 1 knew no validation: the random walk's radii; fold 2 knew fold 1's 2x errors
    assert set(radius[is_prophet & (out["fold"] == 1)]) == {0.1}
    assert set(radius[is_prophet & (out["fold"] == 2)]) == {0.2}
    assert set(radius[~is_prophet]) == {0.1}  # other models untouched
    assert out[["point", "y"]].equals(scored[["point", "y"]])
    # the final fit: every fold's errors, (40 x 2 + 30 x 4) / 70 of naive's
    assert final.interval_scale == {H: pytest.approx(200 / 70)}
    assert _calibration_params(final) == {f"interval_scale_h{H}": f"{200 / 70:.3f}"}
