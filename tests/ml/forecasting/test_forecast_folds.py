"""Walk-forward folds: expanding windows, boundaries, and what a fit may train on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crypto_ml.errors import InvalidInput
from crypto_ml.forecasting.backtest import fold_origins
from crypto_ml.forecasting.folds import fold_of, usable_for_training, walk_forward_folds
from crypto_ml.forecasting.lstm import LstmFamily

AS_OF = pd.Timestamp("2025-06-30")


def test_folds_end_where_every_horizon_can_be_scored():
    plan = walk_forward_folds(AS_OF, folds=6, fold_days=30, max_horizon=30)
    assert [f.number for f in plan] == [1, 2, 3, 4, 5, 6]
    assert plan[-1].last_origin == AS_OF - pd.Timedelta(days=30)
    for earlier, later in zip(plan, plan[1:], strict=False):
        assert later.cutoff - earlier.cutoff == pd.Timedelta(days=30)  # expanding, 30 apart
        assert later.first_origin == earlier.last_origin + pd.Timedelta(days=1)  # contiguous
    for fold in plan:
        assert fold.first_origin == fold.cutoff  # the first forecast uses the fit's last day
        assert (fold.last_origin - fold.first_origin).days == 29
    assert fold_of(plan, plan[2].cutoff) == 3
    assert fold_of(plan, AS_OF) is None


def test_invalid_plans_are_refused():
    with pytest.raises(InvalidInput, match="must be >= 1"):
        walk_forward_folds(AS_OF, folds=0, fold_days=30, max_horizon=30)


def test_a_training_target_must_be_known_at_the_cutoff():
    cutoff = pd.Timestamp("2025-01-31")
    assert usable_for_training(pd.Timestamp("2025-01-01"), 30, cutoff)
    assert not usable_for_training(pd.Timestamp("2025-01-02"), 30, cutoff)


def test_fold_origins_are_observed_days_inside_the_fold(walk_panel):
    plan = walk_forward_folds(walk_panel.as_of, folds=2, fold_days=10, max_horizon=30)
    origins = fold_origins(walk_panel, walk_panel.symbols, plan[0])
    for symbol, days in origins.items():
        assert days.min() >= plan[0].first_origin and days.max() <= plan[0].last_origin
        assert walk_panel[symbol].frame.loc[days, "observed"].all()


def test_the_lstm_training_set_holds_no_target_after_the_cutoff(walk_panel):
    """Samples near the cut-off keep only the horizons whose target day is known."""
    family = LstmFamily(min_history=60, horizons=(1, 7, 30), window_days=20, hidden_size=4,
                        layers=1, epochs=1, batch_size=64, learning_rate=0.01,
                        history_days=400, seed=1, threads=1)  # fmt: skip
    cutoff = pd.Timestamp("2024-01-31")
    x, y, scales, _ = family.training_set(walk_panel.truncate(cutoff), cutoff, ["AAA"])
    # the cut-off itself has no known target and is not a sample; the day before has its
    # 1-day target only, a week before its 1- and 7-day targets
    known = np.isfinite(y)
    assert known[-1].tolist() == [True, False, False]
    assert known[-7].tolist() == [True, True, False]
    assert known[-30].tolist() == [True, True, True]
    # given the whole panel, the fit still sees nothing after the cut-off
    x2, y2, _, _ = family.training_set(walk_panel, cutoff, ["AAA"])
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
