"""The walk-forward backtest: no look-ahead (perturb the future), costs, turnover, benchmarks."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from crypto_ml.errors import InvalidInput, NotEnoughData
from crypto_ml.portfolio.backtest import rebalance_dates, walk_forward
from crypto_ml.portfolio.constraints import Constraints, constraints_from_settings
from portfolio_testdata import make_prices, tokens_for

from crypto_analytics.config import PortfolioConfig

SYMBOLS = ["BTC", "ETH", "SOL", "ADA", "DOGE", "LINK", "UNI"]
CONFIG = PortfolioConfig(window_days=120, min_history_days=60, max_weight=0.5)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    drifts = np.linspace(0.0, 0.003, len(SYMBOLS))
    return make_prices(SYMBOLS, date(2023, 1, 1), 300, seed=21, drift=drifts, vol=0.04)


def _run(prices, settings, config=CONFIG, start=date(2023, 6, 1), end=date(2023, 10, 26)):
    return walk_forward(
        prices,
        tokens_for(settings, SYMBOLS),
        config,
        constraints_from_settings(config, settings.tokens),
        start,
        end,
        benchmark_symbol="BTC",
    )


def test_a_rebalance_never_reads_data_from_its_day_or_later(prices, settings):
    """Perturb every price from a rebalance day on: that day's targets and the equity before it
    must not move; perturbing the day before must move them (the test can fail)."""
    base = _run(prices, settings)
    rebalance = date(2023, 8, 7)  # a Monday inside the backtest
    chosen = base.rebalance_weights
    assert rebalance in set(chosen["date"])

    rng = np.random.default_rng(99)
    future = prices.copy()
    later = future.index >= pd.Timestamp(rebalance)
    future.loc[later] *= np.exp(rng.normal(0, 0.3, future.loc[later].shape))
    perturbed = _run(future, settings)

    def targets(result, when):
        rows = result.rebalance_weights
        return rows[rows["date"] == when].sort_values(["strategy", "symbol"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(targets(base, rebalance), targets(perturbed, rebalance))
    before = base.daily[base.daily["date"] < rebalance].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        before, perturbed.daily[perturbed.daily["date"] < rebalance].reset_index(drop=True)
    )
    # The perturbation does reach the rebalance day's own return and the next targets.
    on_day = lambda r: r.daily[r.daily["date"] == rebalance]["daily_return"].to_numpy()  # noqa: E731
    assert not np.allclose(on_day(base), on_day(perturbed))
    following = rebalance + timedelta(days=7)
    assert not targets(base, following).equals(targets(perturbed, following))

    # Moving the close of the day before the rebalance does change its targets.
    eve = prices.copy()
    eve.loc[pd.Timestamp(rebalance - timedelta(days=1)), "SOL"] *= 1.5
    moved = targets(_run(eve, settings), rebalance)
    assert not np.allclose(moved["weight"], targets(base, rebalance)["weight"])


def test_equity_costs_and_turnover_add_up(prices, settings):
    result = _run(prices, settings)
    daily = result.daily
    assert set(daily["strategy"]) == {
        "max_sharpe",
        "min_volatility",
        "hrp",
        "equal_weight",
        "btc_only",
    }
    for strategy, rows in daily.groupby("strategy"):
        rows = rows.sort_values("date")
        growth = np.prod(1 + rows["daily_return"].to_numpy())
        assert rows["equity"].iloc[-1] == pytest.approx(growth, rel=1e-12)
        np.testing.assert_allclose(
            rows["cost"], rows["turnover"] * CONFIG.transaction_cost_bps / 1e4, rtol=1e-12
        )
        assert rows["rebalanced"].iloc[0]  # starts with a purchase from cash
        assert rows["turnover"].iloc[0] == pytest.approx(1.0)
        assert (rows.loc[~rows["rebalanced"], "turnover"] == 0).all()
        metric = next(m for m in result.metrics if m.strategy == strategy)
        assert metric.total_return == pytest.approx(rows["equity"].iloc[-1] - 1)
        assert metric.costs == pytest.approx(rows["cost"].sum())
    weekly = daily[daily["strategy"] == "equal_weight"]
    assert weekly["rebalanced"].sum() == len(
        rebalance_dates(date(2023, 6, 1), date(2023, 10, 26), "monday")
    )
    assert all(pd.Timestamp(d).weekday() == 0 for d in weekly.loc[weekly["rebalanced"], "date"])


def test_btc_only_is_buy_and_hold_of_btc_after_one_fee(prices, settings):
    result = _run(prices, settings)
    btc = result.daily[result.daily["strategy"] == "btc_only"].sort_values("date")
    first, last = btc["date"].iloc[0], btc["date"].iloc[-1]
    ratio = (
        prices.at[pd.Timestamp(last), "BTC"]
        / prices.at[pd.Timestamp(first - timedelta(days=1)), "BTC"]
    )
    assert btc["equity"].iloc[-1] == pytest.approx(ratio * (1 - 0.001), rel=1e-12)
    assert btc["rebalanced"].sum() == 1


def test_a_gap_in_a_held_token_is_flagged_and_its_move_booked_when_the_price_returns(
    prices, settings
):
    gappy = prices.copy()
    gap = pd.Timestamp("2023-09-13")
    gappy.loc[gap, "BTC"] = np.nan
    result = _run(gappy, settings)
    btc = result.daily[result.daily["strategy"] == "btc_only"].set_index("date")
    assert btc.at[gap.date(), "stale_prices"] == 1
    assert btc.at[gap.date(), "daily_return"] == 0.0
    two_days = prices.at[gap + timedelta(days=1), "BTC"] / prices.at[gap - timedelta(days=1), "BTC"]
    assert btc.at[(gap + timedelta(days=1)).date(), "daily_return"] == pytest.approx(two_days - 1)
    metric = next(m for m in result.metrics if m.strategy == "btc_only")
    assert metric.stale_days == 1


def test_weights_chosen_in_the_backtest_respect_the_constraints(prices, settings):
    config = CONFIG.model_copy(update={"max_weight": 0.3, "category_caps": {"Layer 1": 0.45}})
    limits = constraints_from_settings(config, settings.tokens)
    result = _run(prices, settings, config)
    for (strategy, _), rows in result.rebalance_weights.groupby(["strategy", "date"]):
        if strategy == "btc_only":
            continue
        weights = rows.set_index("symbol")["weight"]
        assert limits.violations(weights) == []


def test_bad_backtest_input_is_refused(prices, settings):
    tokens = tokens_for(settings, SYMBOLS)
    with pytest.raises(InvalidInput, match="unknown backtest strategies"):
        walk_forward(
            prices, tokens, CONFIG, Constraints(), date(2023, 6, 1), date(2023, 7, 1), ["momentum"]
        )
    with pytest.raises(InvalidInput, match="before its start"):
        walk_forward(prices, tokens, CONFIG, Constraints(), date(2023, 7, 1), date(2023, 6, 1))
    with pytest.raises(NotEnoughData, match="no rebalance date"):
        walk_forward(prices, tokens, CONFIG, Constraints(), date(2023, 1, 2), date(2023, 2, 1))
    with pytest.raises(InvalidInput, match="rebalance_weekday"):
        rebalance_dates(date(2023, 1, 1), date(2023, 2, 1), "funday")
