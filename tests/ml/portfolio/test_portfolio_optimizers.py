"""Every strategy obeys every bound and cap, max-Sharpe's fallback, and the bad-input errors."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from crypto_ml.errors import InvalidInput
from crypto_ml.portfolio.constraints import Constraints, GroupCap, constraints_from_settings
from crypto_ml.portfolio.estimators import covariance, expected_returns
from crypto_ml.portfolio.optimizers import (
    STRATEGIES,
    efficient_frontier,
    equal_weight,
    max_sharpe,
    min_volatility,
    optimise,
)
from portfolio_testdata import make_prices

from crypto_analytics.config import PortfolioConfig


@pytest.fixture(scope="module")
def universe_inputs():
    """mu and Sigma of all 38 tokens from a year of made-up daily returns (drifts spread out so
    the caps bind)."""
    from crypto_analytics.config import get_settings

    symbols = [t.symbol for t in get_settings().tokens]
    drifts = np.linspace(-0.001, 0.004, len(symbols))
    prices = make_prices(symbols, date(2023, 1, 1), 366, seed=2, drift=drifts, vol=0.04)
    returns = prices.pct_change(fill_method=None).dropna()
    return expected_returns(returns, "mean"), covariance(returns, "ledoit_wolf")


CONFIGS = {
    "caps": dict(max_weight=0.2, category_caps={"Meme": 0.1, "NFT": 0.15, "Layer 1": 0.4}),
    "floors": dict(min_weight=0.01, max_weight=0.1, category_caps={"DeFi": 0.2}),
    "stablecoin cap": dict(max_weight=0.3, stablecoins="cap", stablecoin_cap=0.05),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_every_strategy_and_frontier_point_respects_every_bound_and_cap(
    universe_inputs, settings, name
):
    mu, cov = universe_inputs
    config = PortfolioConfig(**CONFIGS[name])
    limits = constraints_from_settings(config, settings.tokens)
    assert limits.group_caps  # the test must exercise caps
    for strategy in STRATEGIES:
        portfolio = optimise(strategy, mu, cov, 0.04, limits)
        assert portfolio.weights.sum() == pytest.approx(1, abs=1e-9)
        assert (portfolio.weights >= -1e-12).all()
        assert limits.violations(portfolio.weights) == [], strategy
    for point in efficient_frontier(mu, cov, limits, 8):
        assert limits.violations(point.weights) == []
    # The caps bind: the unconstrained tangency portfolio breaks at least one of them.
    free = max_sharpe(mu, cov, 0.04, Constraints())
    assert limits.violations(free.weights)


def test_max_sharpe_beats_every_frontier_point_and_random_portfolio(universe_inputs):
    from crypto_ml.portfolio.montecarlo import random_portfolios

    mu, cov = universe_inputs
    limits = Constraints(0.0, 1.0)
    best = max_sharpe(mu, cov, 0.04, limits).weights
    sharpe = lambda w: (w @ mu - 0.04) / np.sqrt(w @ cov @ w)  # noqa: E731
    frontier = [sharpe(p.weights) for p in efficient_frontier(mu, cov, limits, 30)]
    assert sharpe(best) >= max(frontier) - 1e-7
    cloud = random_portfolios(mu, cov, 0.04, 20_000, seed=1)
    assert np.nanmax(cloud.sharpes) < sharpe(best)


def test_max_sharpe_falls_back_to_min_volatility_when_every_return_is_below_rf(universe_inputs):
    mu, cov = universe_inputs
    losing = mu - mu.max() - 0.01  # every expected return below 0 < rf
    limits = Constraints(0.0, 0.3)
    result = max_sharpe(losing, cov, 0.04, limits)
    reference = min_volatility(cov, limits)
    assert result.fallback is True
    assert "at or below the risk-free rate" in result.note
    assert np.abs(result.weights - reference.weights).max() < 1e-9
    # An expected return exactly at the risk-free rate is "at or below" too.
    at_rf = pd.Series(0.04, index=mu.index)
    assert max_sharpe(at_rf, cov, 0.04, limits).fallback is True


def test_max_sharpe_falls_back_when_constraints_keep_every_portfolio_below_rf():
    symbols = ["A", "B", "C"]
    mu = pd.Series([0.30, -0.20, -0.20], index=symbols)
    cov = pd.DataFrame(np.diag([0.04, 0.05, 0.06]), index=symbols, columns=symbols)
    # At most 40 % in A: the best attainable return is 0.4 x 0.3 - 0.6 x 0.2 = 0 < rf.
    result = max_sharpe(mu, cov, 0.02, Constraints(0.0, 0.4))
    assert result.fallback is True
    assert "no portfolio within the constraints" in result.note
    # With the cap lifted the tangency portfolio exists and is all A.
    free = max_sharpe(mu, cov, 0.02, Constraints(0.0, 1.0))
    assert not free.fallback and free.weights["A"] == pytest.approx(1, abs=1e-6)


def test_near_singular_covariance_with_stablecoins_still_optimises():
    rng = np.random.default_rng(9)
    days = 400
    btc = rng.normal(0.002, 0.04, days)
    eth = 0.8 * btc + rng.normal(0.001, 0.02, days)
    usdc = rng.normal(0, 1e-5, days)
    usdt = usdc + rng.normal(0, 1e-9, days)  # two pegged coins, nearly collinear
    returns = pd.DataFrame({"BTC": btc, "ETH": eth, "USDC": usdc, "USDT": usdt})
    cov = covariance(returns, "sample")
    eigenvalues = np.linalg.eigvalsh(cov.to_numpy())
    assert eigenvalues.min() > 0  # lifted to positive definite
    mu = expected_returns(returns, "mean")
    limits = Constraints(0.0, 1.0, (GroupCap("stablecoins", ("USDC", "USDT"), 0.2),))
    result = max_sharpe(mu, cov, 0.0, limits)
    assert limits.violations(result.weights) == []
    assert result.weights[["USDC", "USDT"]].sum() <= 0.2 + 1e-7


@pytest.mark.parametrize(
    ("limits", "symbols", "message"),
    [
        (Constraints(0.0, 0.2), ["A", "B", "C"], "max_weight 0.2 x 3 eligible assets = 0.60 < 1"),
        (Constraints(0.4, 1.0), ["A", "B", "C"], "min_weight 0.4 x 3 eligible assets = 1.20 > 1"),
        (
            Constraints(0.1, 1.0, (GroupCap("category Meme", ("A", "B"), 0.15),)),
            ["A", "B", "C"],
            "category Meme must hold at least min_weight 0.1 x 2 assets = 0.20, above its cap 0.15",
        ),
        (
            Constraints(0.0, 0.5, (GroupCap("category Meme", ("A", "B"), 0.3),)),
            ["A", "B", "C"],
            "at most 0.80 of the portfolio can be invested",
        ),
    ],
)
def test_infeasible_constraints_name_the_constraint(limits, symbols, message):
    cov = pd.DataFrame(np.eye(len(symbols)) * 0.04, index=symbols, columns=symbols)
    mu = pd.Series(0.2, index=symbols)
    for solve in (
        lambda: max_sharpe(mu, cov, 0.0, limits),
        lambda: min_volatility(cov, limits),
        lambda: equal_weight(symbols, limits),
    ):
        with pytest.raises(InvalidInput, match="infeasible") as info:
            solve()
        assert message in str(info.value)


def test_unknown_category_cap_and_strategy_are_clear_errors(settings):
    with pytest.raises(InvalidInput, match="unknown category 'Memes'.*Meme"):
        constraints_from_settings(PortfolioConfig(category_caps={"Memes": 0.1}), settings.tokens)
    cov = pd.DataFrame(np.eye(2), index=["A", "B"], columns=["A", "B"])
    with pytest.raises(InvalidInput, match="unknown strategy 'sharpe'.*max_sharpe"):
        optimise("sharpe", pd.Series([0.1, 0.2], index=["A", "B"]), cov, 0.0, Constraints())


def test_settings_refuse_inverted_bounds_and_bad_caps():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="min_weight 0.5 is above max_weight 0.2"):
        PortfolioConfig(min_weight=0.5, max_weight=0.2)
    with pytest.raises(ValidationError, match="category cap Meme: 1.5"):
        PortfolioConfig(category_caps={"Meme": 1.5})
    with pytest.raises(ValidationError, match="extra"):
        PortfolioConfig(max_wieght=0.3)


def test_hrp_and_equal_weight_are_moved_into_the_caps_and_say_so():
    symbols = ["A", "B", "C", "D"]
    cov = pd.DataFrame(np.diag([0.01, 0.01, 0.09, 0.09]), index=symbols, columns=symbols)
    limits = Constraints(0.0, 0.35, (GroupCap("low-vol pair", ("A", "B"), 0.5),))
    hrp = optimise("hrp", pd.Series(0.1, index=symbols), cov, 0.0, limits)
    assert hrp.note and "nearest portfolio" in hrp.note
    assert limits.violations(hrp.weights) == []
    plain = equal_weight(symbols, Constraints())
    assert plain.note is None and (plain.weights == 0.25).all()
