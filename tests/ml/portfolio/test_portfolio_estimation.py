"""Estimators against PyPortfolioOpt/scikit-learn, eligibility with reasons, Monte Carlo and the
risk metrics against skfolio."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from crypto_ml.errors import InvalidInput, NotEnoughData
from crypto_ml.portfolio import montecarlo
from crypto_ml.portfolio.estimators import (
    covariance,
    expected_returns,
    forecast_expected_returns,
    returns_from_prices,
)
from crypto_ml.portfolio.inputs import build_inputs, eligible_returns, estimation_window
from crypto_ml.portfolio.montecarlo import random_portfolios, return_scenarios
from crypto_ml.portfolio.risk import (
    conditional_value_at_risk,
    max_drawdown,
    portfolio_metrics,
    sortino_ratio,
    value_at_risk,
)
from portfolio_testdata import make_prices, tokens_for

from crypto_analytics.config import PortfolioConfig

SYMBOLS = ["BTC", "ETH", "SOL", "DOGE", "LINK"]


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return make_prices(SYMBOLS, date(2023, 1, 1), 400, seed=4)


def test_estimators_equal_pypfopt_and_sklearn_annualised_with_365_days(prices):
    from pypfopt import expected_returns as pe
    from pypfopt import risk_models

    returns = returns_from_prices(prices, "simple")
    pd.testing.assert_series_equal(
        expected_returns(returns, "mean"),
        pe.mean_historical_return(prices, compounding=False, frequency=365),
        check_names=False,
    )
    pd.testing.assert_series_equal(
        expected_returns(returns, "ema", ema_span=60),
        pe.ema_historical_return(prices, compounding=False, span=60, frequency=365),
        check_names=False,
    )
    np.testing.assert_allclose(
        covariance(returns, "sample"), risk_models.sample_cov(prices, frequency=365), rtol=1e-10
    )
    shrunk = risk_models.CovarianceShrinkage(prices, frequency=365).ledoit_wolf()
    np.testing.assert_allclose(covariance(returns, "ledoit_wolf"), shrunk, rtol=1e-10)
    log = returns_from_prices(prices, "log")
    np.testing.assert_allclose(
        expected_returns(log, "mean"),
        pe.mean_historical_return(prices, compounding=False, frequency=365, log_returns=True),
    )


def test_returns_are_never_spanned_across_a_missing_day(prices):
    gappy = prices.drop(prices.index[100])
    returns = returns_from_prices(gappy, "simple")
    assert returns.loc[prices.index[100]].isna().all()
    assert returns.loc[prices.index[101]].isna().all()  # not close[101] / close[99]
    assert returns.loc[prices.index[102]].notna().all()


def test_forecast_expected_returns_turn_a_price_forecast_into_an_annual_rate():
    predictions = pd.DataFrame(
        {"point": [110.0, 95.0], "horizon_days": [7, 7]}, index=["BTC", "ETH"]
    )
    last = pd.Series({"BTC": 100.0, "ETH": 100.0, "SOL": 20.0})
    simple = forecast_expected_returns(predictions, last, "simple", 365)
    assert simple["BTC"] == pytest.approx((1.1 ** (1 / 7) - 1) * 365)
    assert simple["ETH"] == pytest.approx((0.95 ** (1 / 7) - 1) * 365)
    assert "SOL" not in simple.index  # no forecast, no estimate
    log = forecast_expected_returns(predictions, last, "log", 365)
    assert log["BTC"] == pytest.approx(np.log(1.1) / 7 * 365)
    with pytest.raises(InvalidInput, match="non-positive forecast prices for ETH"):
        forecast_expected_returns(predictions.assign(point=[1.0, 0.0]), last, "simple")


def test_the_estimation_window_ends_strictly_before_the_run_date(prices):
    returns = returns_from_prices(prices, "simple")
    run_date = date(2023, 6, 1)
    window = estimation_window(returns, run_date, 90)
    assert window.index.max() == pd.Timestamp(run_date - timedelta(days=1))
    assert window.index.min() == pd.Timestamp(run_date - timedelta(days=90))
    assert len(window) == 90


def test_exclusions_carry_their_reasons(settings):
    symbols = ["BTC", "ETH", "SOL", "USDC", "PEPE", "DOGE"]
    prices = make_prices(symbols, date(2023, 1, 1), 366, seed=8)
    prices.loc[: pd.Timestamp("2023-10-01"), "PEPE"] = np.nan  # listed late: short history
    prices["DOGE"] = 0.07  # never moves
    prices.loc[pd.Timestamp("2023-03-05"), "SOL"] = np.nan  # one gap
    window = returns_from_prices(prices, "simple")
    config = PortfolioConfig(min_history_days=180, window_days=365)
    eligible = eligible_returns(window, tokens_for(settings, symbols), config)

    reasons = {e.symbol: e.reason for e in eligible.exclusions}
    assert set(eligible.symbols) == {"BTC", "ETH", "SOL"}
    assert reasons["USDC"] == "stablecoin (portfolio.stablecoins = exclude)"
    assert reasons["PEPE"].startswith("short history: 91 daily returns")
    assert "constant price" in reasons["DOGE"]
    assert eligible.dates_dropped == 2  # SOL's gap costs the day and the day after
    assert not eligible.returns.isna().any().any()

    capped = eligible_returns(
        window, tokens_for(settings, symbols), config.model_copy(update={"stablecoins": "cap"})
    )
    assert "USDC" in capped.symbols


def test_fewer_than_two_eligible_assets_is_a_clear_error(settings):
    prices = make_prices(["BTC", "ETH"], date(2023, 1, 1), 100, seed=1)
    window = returns_from_prices(prices, "simple")
    with pytest.raises(NotEnoughData) as info:
        eligible_returns(window, tokens_for(settings, ["BTC", "ETH", "USDT"]), PortfolioConfig())
    message = str(info.value)
    assert "fewer than two eligible assets" in message
    assert "BTC: short history: 99 daily returns" in message
    assert "USDT: stablecoin" in message


def test_build_inputs_with_forecasts_excludes_tokens_without_one(settings, prices):
    window = returns_from_prices(prices, "simple").iloc[-365:]
    config = PortfolioConfig(expected_returns="forecast")
    eligible = eligible_returns(window, tokens_for(settings, SYMBOLS), config)
    forecasts = pd.Series({"BTC": 0.5, "ETH": 0.3, "SOL": 0.9})
    inputs = build_inputs(date(2024, 2, 5), eligible, config, forecasts)
    assert inputs.symbols == ["BTC", "ETH", "SOL"]
    assert {e.symbol for e in inputs.exclusions} == {"DOGE", "LINK"}
    assert list(inputs.covariance.index) == inputs.symbols
    assert inputs.expected_returns["SOL"] == 0.9


def test_monte_carlo_statistics_equal_a_direct_computation(monkeypatch):
    rng = np.random.default_rng(0)
    symbols = list("ABCDEF")
    a = rng.normal(size=(6, 6))
    cov = pd.DataFrame(a @ a.T / 10, index=symbols, columns=symbols)
    mu = pd.Series(rng.normal(0.2, 0.1, 6), index=symbols)
    cloud = random_portfolios(mu, cov, 0.03, 70_000, seed=3)  # spans two chunks
    again = random_portfolios(mu, cov, 0.03, 70_000, seed=3)
    np.testing.assert_array_equal(cloud.expected_returns, again.expected_returns)
    monkeypatch.setattr(montecarlo, "THREADS", 1)  # the same cloud on one thread
    np.testing.assert_array_equal(
        random_portfolios(mu, cov, 0.03, 70_000, seed=3).volatilities, cloud.volatilities
    )

    # The same draws (float32, as the module draws them) through the textbook formulas.
    first_chunk = np.random.default_rng(np.random.SeedSequence(3).spawn(2)[0])
    draws = first_chunk.standard_exponential((50_000, 6), dtype=np.float32)
    weights = draws.astype(float) / draws.astype(float).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(cloud.expected_returns[:50_000], weights @ mu.to_numpy(), rtol=1e-5)
    direct_vol = np.sqrt(np.einsum("ij,jk,ik->i", weights, cov.to_numpy(), weights))
    np.testing.assert_allclose(cloud.volatilities[:50_000], direct_vol, rtol=1e-5)
    np.testing.assert_allclose(cloud.sharpes, (cloud.expected_returns - 0.03) / cloud.volatilities)
    assert cloud.expected_returns.dtype == np.float64
    sample = cloud.sample(500, seed=1)
    assert len(sample) == 500 and sample["sample_index"].is_unique
    with pytest.raises(InvalidInput, match="dirichlet_alpha"):
        random_portfolios(mu, cov, 0.0, 10, seed=1, dirichlet_alpha=0)


def test_return_scenarios_have_the_inputs_moments():
    symbols = ["A", "B"]
    cov = pd.DataFrame([[0.09, 0.03], [0.03, 0.16]], index=symbols, columns=symbols)
    mu = pd.Series([0.365, 0.73], index=symbols)
    draws = return_scenarios(mu, cov, 400_000, seed=2, periods_per_year=365)
    np.testing.assert_allclose(draws.mean(axis=0), mu / 365, atol=1.5e-4)  # ~4.5 s.e.
    np.testing.assert_allclose(np.cov(draws.T), cov / 365, rtol=0.02)


def test_risk_measures_equal_skfolio():
    from skfolio.measures import cvar, get_drawdowns, semi_deviation
    from skfolio.measures import max_drawdown as sk_max_drawdown
    from skfolio.measures import value_at_risk as sk_value_at_risk

    rng = np.random.default_rng(12)
    for size in (37, 365, 1000):
        returns = rng.standard_t(3, size) * 0.02
        for confidence in (0.9, 0.95, 0.99):
            assert value_at_risk(returns, confidence) == pytest.approx(
                sk_value_at_risk(returns, confidence), abs=1e-15
            )
            assert conditional_value_at_risk(returns, confidence) == pytest.approx(
                cvar(returns, confidence), abs=1e-15
            )
        drawdowns = get_drawdowns(returns, compounded=True)
        assert max_drawdown(returns) == pytest.approx(sk_max_drawdown(drawdowns), abs=1e-12)
        downside = semi_deviation(returns, min_acceptable_return=0.04 / 365, biased=True)
        expected = (returns.mean() * 365 - 0.04) / (downside * np.sqrt(365))
        assert sortino_ratio(returns, 0.04, 365) == pytest.approx(expected, rel=1e-10)


def test_portfolio_metrics_by_hand():
    symbols = ["A", "B"]
    history = pd.DataFrame({"A": [0.1, -0.2, 0.05, 0.0], "B": [0.0, 0.1, -0.1, 0.02]})
    mu = pd.Series([0.4, 0.2], index=symbols)
    cov = pd.DataFrame([[0.04, 0.01], [0.01, 0.09]], index=symbols, columns=symbols)
    weights = pd.Series({"A": 0.5, "B": 0.5})
    m = portfolio_metrics(weights, mu, cov, history, 0.1, 0.75, 365)
    assert m.expected_return == pytest.approx(0.3)
    assert m.volatility == pytest.approx(np.sqrt(0.25 * 0.04 + 0.25 * 0.09 + 0.5 * 0.01))
    assert m.sharpe == pytest.approx((0.3 - 0.1) / m.volatility)
    # daily portfolio returns 0.05, -0.05, -0.025, 0.01: a loss above 0.025 has probability
    # 1/4 = 1 - confidence, so VaR is 0.025; the worst 25 % of the mass is the -0.05 day
    assert m.var_historical == pytest.approx(0.025)
    assert m.cvar_historical == pytest.approx(0.05)
    assert m.max_drawdown == pytest.approx(1 - (1.05 * 0.95 * 0.975) / 1.05)
    assert m.var_monte_carlo is None
