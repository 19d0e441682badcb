"""The champion rule and the drift check, as pure functions (the registry test runs them on MLflow)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.drift import check_drift
from crypto_ml.forecasting.registry import decide


def test_first_champion_is_the_candidate_only_when_it_beats_the_random_walk():
    first = decide("lstm", {"lstm": 0.97, "naive": 1.0}, 500, None)
    assert (first.champion_after, first.promoted) == ("lstm", True)
    nothing = decide("lstm", {"lstm": 1.02, "naive": 1.0}, 500, None)
    assert nothing.champion_after == "naive"
    assert "nothing beats the random walk" in nothing.reason and "1.0200" in nothing.reason


def test_a_candidate_must_beat_both_the_champion_and_naive_on_the_same_points():
    promoted = decide("gbm", {"gbm": 0.95, "lstm": 0.97, "naive": 1.0}, 400, "lstm")
    assert (promoted.champion_after, promoted.promoted) == ("gbm", True)
    assert promoted.champion_score == pytest.approx(0.97)
    kept = decide("gbm", {"gbm": 0.98, "lstm": 0.97, "naive": 1.0}, 400, "lstm")
    assert (kept.champion_after, kept.promoted) == ("lstm", False)
    assert "kept lstm" in kept.reason
    naive_holds = decide("prophet", {"prophet": 1.01, "naive": 1.0}, 400, "naive")
    assert (naive_holds.champion_after, naive_holds.promoted) == ("naive", False)
    fallen = decide("gbm", {"gbm": 1.05, "lstm": 1.02, "naive": 1.0}, 400, "lstm")
    assert (fallen.champion_after, fallen.promoted) == ("naive", True)


def _predictions(errors: list[float], horizon: int = 1) -> pd.DataFrame:
    days = pd.date_range("2025-06-01", periods=len(errors), freq="D")
    return pd.DataFrame({
        "symbol": "AAA", "as_of_date": days - pd.Timedelta(days=horizon), "horizon_days": horizon,
        "target_date": days, "point": 100 * np.exp(errors), "model_version": "3",
        "realised_close": 100.0,
    })  # fmt: skip


def test_drift_is_a_ratio_above_the_threshold_with_enough_points():
    base = dict(as_of=date(2025, 6, 30), model="lstm", model_version="3", window_days=30,
                threshold=1.5, min_points=20)  # fmt: skip
    calm = check_drift(_predictions([0.01] * 30), {1: 0.01}, **base)
    assert len(calm) == 1 and not calm[0].is_drift
    assert calm[0].error_ratio == pytest.approx(1.0)
    stormy = check_drift(_predictions([0.02] * 30), {1: 0.01}, **base)[0]
    assert stormy.is_drift and stormy.retraining_requested
    assert stormy.error_ratio == pytest.approx(2.0) and stormy.n_points == 30
    few = check_drift(_predictions([0.05] * 10), {1: 0.01}, **base)[0]
    assert not few.is_drift and few.n_points == 10  # recorded, no verdict
    unrealised = _predictions([0.05] * 30).assign(realised_close=np.nan)
    assert check_drift(unrealised, {1: 0.01}, **base)[0].n_points == 0
