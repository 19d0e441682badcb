"""The optimisers against independent implementations: PyPortfolioOpt on its own test prices
(../shared/data/reference/pypfopt_tests_resources), scipy's SLSQP, and PyPortfolioOpt's HRP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crypto_ml.portfolio.constraints import Constraints, GroupCap
from crypto_ml.portfolio.optimizers import (
    efficient_frontier,
    hrp_weights,
    max_sharpe,
    min_volatility,
)
from scipy.optimize import minimize

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def stock_prices(shared_data) -> pd.DataFrame:
    path = shared_data / "reference" / "pypfopt_tests_resources" / "stock_prices.csv"
    return pd.read_csv(path, parse_dates=True, index_col="date")


@pytest.fixture(scope="module")
def reference_inputs(stock_prices):
    """mu and Sigma exactly as PyPortfolioOpt's own tests build them."""
    from pypfopt import expected_returns, risk_models

    return expected_returns.mean_historical_return(stock_prices), risk_models.sample_cov(
        stock_prices
    )


def _sharpe(weights: pd.Series, mu: pd.Series, cov: pd.DataFrame, rf: float) -> float:
    w = weights.reindex(mu.index).fillna(0).to_numpy()
    return float((w @ mu.to_numpy() - rf) / np.sqrt(w @ cov.to_numpy() @ w))


@pytest.mark.parametrize("rf", [0.0, 0.02])
def test_max_sharpe_equals_pypfopt_on_its_test_prices(reference_inputs, rf):
    from pypfopt import EfficientFrontier

    mu, cov = reference_inputs
    frontier = EfficientFrontier(mu, cov)
    theirs = pd.Series(frontier.max_sharpe(risk_free_rate=rf))
    their_sharpe = frontier.portfolio_performance(risk_free_rate=rf)[2]

    ours = max_sharpe(mu, cov, rf, Constraints())

    assert not ours.fallback
    assert abs(_sharpe(ours.weights, mu, cov, rf) - their_sharpe) < 1e-4
    assert np.abs(ours.weights - theirs.reindex(ours.weights.index)).max() < 1e-4
    assert ours.weights.sum() == pytest.approx(1, abs=1e-9)


def test_max_sharpe_with_bounds_and_sector_caps_equals_pypfopt(reference_inputs):
    from pypfopt import EfficientFrontier

    mu, cov = reference_inputs
    sectors = {
        "tech": ["GOOG", "AAPL", "FB", "AMZN", "AMD", "BABA"],
        "finance": ["BAC", "JPM", "MA"],
    }
    mapper = {t: s for s, tickers in sectors.items() for t in tickers}
    mapper.update({t: "other" for t in mu.index if t not in mapper})
    frontier = EfficientFrontier(mu, cov, weight_bounds=(0.01, 0.15))
    frontier.add_sector_constraints(mapper, {}, {"tech": 0.3, "finance": 0.2})
    theirs = pd.Series(frontier.max_sharpe(risk_free_rate=0.02))

    limits = Constraints(
        0.01,
        0.15,
        (
            GroupCap("tech", tuple(sectors["tech"]), 0.3),
            GroupCap("finance", tuple(sectors["finance"]), 0.2),
        ),
    )
    ours = max_sharpe(mu, cov, 0.02, limits)

    assert limits.violations(ours.weights) == []
    assert abs(_sharpe(ours.weights, mu, cov, 0.02) - _sharpe(theirs, mu, cov, 0.02)) < 1e-4
    assert np.abs(ours.weights - theirs.reindex(ours.weights.index)).max() < 1e-3


def test_min_volatility_and_frontier_equal_pypfopt(reference_inputs):
    from pypfopt import EfficientFrontier

    mu, cov = reference_inputs
    theirs = pd.Series(EfficientFrontier(mu, cov, weight_bounds=(0, 0.2)).min_volatility())
    limits = Constraints(0.0, 0.2)
    ours = min_volatility(cov, limits)
    variance = lambda w: float(w @ cov.to_numpy() @ w)  # noqa: E731
    assert variance(ours.weights.to_numpy()) == pytest.approx(
        variance(theirs.reindex(mu.index).to_numpy()), rel=1e-5
    )

    points = efficient_frontier(mu, cov, limits, 6)
    assert len(points) == 6
    for point in points[1:-1]:
        target = float(point.weights @ mu)
        reference = EfficientFrontier(mu, cov, weight_bounds=(0, 0.2))
        reference.efficient_return(target)
        their_vol = reference.portfolio_performance()[1]
        our_vol = np.sqrt(variance(point.weights.to_numpy()))
        assert our_vol == pytest.approx(their_vol, rel=1e-4)
        assert target >= point.target_return - 1e-7
    vols = [np.sqrt(variance(p.weights.to_numpy())) for p in points]
    assert vols == sorted(vols)  # risk rises along the frontier


def test_hrp_equals_pypfopt_reference_weights(shared_data, stock_prices):
    """The reference file is HRPOpt(stock_prices.pct_change().dropna(how='all')) with single
    linkage; pairwise statistics as HRPOpt computes them from returns with gaps."""
    reference = pd.read_csv(
        shared_data / "reference" / "pypfopt_tests_resources" / "weights_hrp.csv", index_col=0
    ).iloc[:, 0]
    returns = stock_prices.pct_change(fill_method=None).dropna(how="all")
    ours = hrp_weights(returns.cov(), returns.corr(), "single")
    np.testing.assert_allclose(ours[reference.index], reference, rtol=1e-2)
    assert np.abs(ours[reference.index] - reference).max() < 1e-12


@pytest.mark.parametrize("linkage", ["single", "complete", "average", "ward"])
def test_hrp_equals_pypfopt_hrpopt_on_complete_returns(stock_prices, linkage):
    from pypfopt import HRPOpt

    returns = stock_prices.pct_change(fill_method=None).dropna()
    theirs = pd.Series(HRPOpt(returns).optimize(linkage_method=linkage))
    ours = hrp_weights(returns.cov(), linkage=linkage)
    assert np.abs(ours - theirs.reindex(ours.index)).max() < 1e-10
    assert ours.sum() == pytest.approx(1)


def test_max_sharpe_with_category_caps_equals_slsqp():
    """A second, independent solver (scipy SLSQP on the Sharpe ratio itself) under caps."""
    rng = np.random.default_rng(5)
    n = 12
    symbols = [f"T{i}" for i in range(n)]
    daily = rng.normal(0.001, 0.02, (500, n)) + rng.normal(0, 0.015, (500, 1))
    mu = pd.Series(daily.mean(axis=0) * 365 + np.linspace(0, 0.4, n), index=symbols)
    cov = pd.DataFrame(np.cov(daily.T) * 365, index=symbols, columns=symbols)
    groups = (GroupCap("A", tuple(symbols[:4]), 0.3), GroupCap("B", tuple(symbols[8:]), 0.25))
    limits = Constraints(0.02, 0.25, groups)

    ours = max_sharpe(mu, cov, 0.03, limits)

    def negative_sharpe(w):
        return -(w @ mu.to_numpy() - 0.03) / np.sqrt(w @ cov.to_numpy() @ w)

    caps = [
        {"type": "ineq", "fun": lambda w, idx=idx, cap=g.cap: cap - w[idx].sum()}
        for g in groups
        for idx in [[symbols.index(s) for s in g.symbols]]
    ]
    slsqp = minimize(
        negative_sharpe,
        np.full(n, 1 / n),
        method="SLSQP",
        bounds=[(0.02, 0.25)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}, *caps],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert slsqp.success
    assert limits.violations(ours.weights) == []
    assert -slsqp.fun == pytest.approx(_sharpe(ours.weights, mu, cov, 0.03), abs=1e-5)
