"""Metrics against hand-computed values, QLIKE against its formula, scores on shared points."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crypto_ml.forecasting.metrics import (
    common_point_scores,
    evaluate_forecasts,
    evaluate_volatility,
    interval_score,
    qlike,
    validation_mae,
)

DAY = pd.Timestamp("2025-01-01")


def _row(model, origin_offset, base, point, y, lo80, hi80, lo95, hi95, fold=1, symbol="AAA"):
    origin = DAY + pd.Timedelta(days=origin_offset)
    return {
        "model": model, "symbol": symbol, "fold": fold, "origin": origin, "horizon": 1,
        "target_date": origin + pd.Timedelta(days=1), "base": math.log(base),
        "point": math.log(point), "y": math.log(y), "q10": math.log(lo80), "q90": math.log(hi80),
        "q025": math.log(lo95), "q975": math.log(hi95),
    }  # fmt: skip


@pytest.fixture
def scored() -> pd.DataFrame:
    # naive: point = base; model "up" forecasts +10 %
    rows = [
        _row("naive", 0, 100, 100, 110, 95, 105, 90, 112),
        _row("naive", 1, 110, 110, 99, 100, 120, 95, 125),
        _row("up", 0, 100, 110, 110, 105, 115, 100, 120),
        _row("up", 1, 110, 121, 99, 115, 127, 110, 133),
    ]
    return pd.DataFrame(rows)


def test_point_and_interval_metrics_by_hand(scored):
    metrics = evaluate_forecasts(scored).set_index(["model", "fold"])
    naive, up = metrics.loc[("naive", 1)], metrics.loc[("up", 1)]
    assert naive["n_points"] == 2
    assert naive["mae"] == pytest.approx((10 + 11) / 2)
    assert naive["rmse"] == pytest.approx(math.sqrt((10**2 + 11**2) / 2))
    assert naive["mape"] == pytest.approx(100 * (10 / 110 + 11 / 99) / 2)
    assert naive["mase"] == pytest.approx(1.0)
    assert np.isnan(naive["directional_accuracy"])  # no forecast change: undefined
    assert up["mae"] == pytest.approx((0 + 22) / 2)
    assert up["mase"] == pytest.approx(11 / 10.5)
    assert up["directional_accuracy"] == pytest.approx(0.5)  # right on day 0, wrong on day 1
    # 110 is outside naive's [95, 105] but inside [90, 112]; 99 is outside [100, 120] but
    # inside [95, 125]
    assert naive["coverage_80"] == pytest.approx(0.0)
    assert naive["coverage_95"] == pytest.approx(1.0)
    assert naive["width_80"] == pytest.approx(((105 - 95) / 100 + (120 - 100) / 110) / 2)
    # pooled fold 0 equals the single fold here
    assert metrics.loc[("up", 0), "mase"] == pytest.approx(up["mase"])


def test_interval_score_and_pinball_definitions(scored):
    y = np.log(np.array([110.0, 99.0]))
    lo, hi = np.log(np.array([95.0, 100.0])), np.log(np.array([105.0, 120.0]))
    expected = (hi - lo) + 2 / 0.2 * np.maximum(lo - y, 0) + 2 / 0.2 * np.maximum(y - hi, 0)
    np.testing.assert_allclose(interval_score(lo, hi, y, 80), expected)
    metrics = evaluate_forecasts(scored).set_index(["model", "fold"])
    assert metrics.loc[("naive", 1), "interval_score_80"] == pytest.approx(expected.mean())
    row = scored.iloc[0]
    losses = []
    for level, column in [
        (0.025, "q025"),
        (0.1, "q10"),
        (0.5, "point"),
        (0.9, "q90"),
        (0.975, "q975"),
    ]:
        error = row["y"] - row[column]
        losses.append(max(level * error, (level - 1) * error))
    first = evaluate_forecasts(scored.iloc[[0, 2]]).set_index(["model", "fold"])
    assert first.loc[("naive", 1), "pinball"] == pytest.approx(np.mean(losses))


def test_qlike_is_zero_at_the_truth_and_penalises_under_forecasts_more():
    assert qlike(np.array([2.0]), np.array([2.0]))[0] == pytest.approx(0.0)
    under = qlike(np.array([2.0]), np.array([1.0]))[0]
    over = qlike(np.array([2.0]), np.array([4.0]))[0]
    assert under == pytest.approx(2 - math.log(2) - 1)
    assert over == pytest.approx(0.5 - math.log(0.5) - 1)
    assert under > over
    assert np.isnan(qlike(np.array([0.0]), np.array([1.0]))[0])
    frame = pd.DataFrame({"model": "garch", "symbol": "AAA", "horizon": 1, "fold": 1,
                          "realised": [2.0, 2.0], "variance_h": [2.0, 1.0]})  # fmt: skip
    table = evaluate_volatility(frame).set_index("fold")
    assert table.loc[1, "qlike"] == pytest.approx(under / 2)
    assert table.loc[0, "n_points"] == 2


def test_scores_use_only_points_every_model_shares(scored):
    extra = scored.iloc[[3]].assign(model="up", origin=DAY + pd.Timedelta(days=9))
    scores, n = common_point_scores(pd.concat([scored, extra]), ["up"])
    assert n == 2  # the extra point has no naive forecast
    assert scores["naive"] == pytest.approx(1.0)
    assert scores["up"] == pytest.approx(22 / 21)
    assert validation_mae(scored, "naive")[1] == pytest.approx(
        np.mean(np.abs(np.log([100 / 110, 110 / 99])))
    )
