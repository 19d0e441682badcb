"""The portfolio page's on-the-spot optimisation equals PyPortfolioOpt on the same gold returns,
read independently, and refuses what it cannot do with the reason."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from crypto_ml.errors import InvalidInput

from crypto_analytics.config import get_settings
from crypto_analytics.contract import PERIODS_PER_YEAR

pytestmark = pytest.mark.integration

STREAMLIT = Path(__file__).resolve().parents[2] / "streamlit"
SYMBOLS = ["BTC", "ETH", "SOL", "LINK"]  # Layer 1 and Infrastructure: no category cap applies


def _whatif():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(STREAMLIT))
    try:
        import portfolio_whatif
    finally:
        sys.path.remove(str(STREAMLIT))
    return portfolio_whatif


def _run_date(url: str) -> date:
    with psycopg.connect(url) as conn:
        newest = conn.execute(
            "select max(date) from gold.daily_crypto_metrics where is_complete_day"
        ).fetchone()[0]  # type: ignore[index]
    return newest + timedelta(days=1)


def _reference_inputs(url: str, run_date: date) -> tuple[pd.Series, pd.DataFrame]:
    """mu and Sigma from gold, computed here with pandas and scikit-learn (not crypto_ml)."""
    config = get_settings().portfolio
    column = "daily_return" if config.return_kind == "simple" else "log_return"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"""
            select date, symbol, {column} from gold.daily_crypto_metrics
            where symbol = any(%s) and is_complete_day and date >= %s and date < %s
            """,
            (SYMBOLS, run_date - timedelta(days=config.window_days), run_date),
        ).fetchall()
    returns = pd.DataFrame(rows, columns=["date", "symbol", "r"]).pivot(
        index="date", columns="symbol", values="r"
    )
    returns = returns[SYMBOLS].astype(float).dropna()
    if config.expected_returns == "ema":
        mu = returns.ewm(span=config.ema_span_days).mean().iloc[-1] * PERIODS_PER_YEAR
    else:
        mu = returns.mean() * PERIODS_PER_YEAR
    if config.covariance == "ledoit_wolf":
        from sklearn.covariance import LedoitWolf

        matrix = LedoitWolf().fit(returns.to_numpy()).covariance_
    else:
        matrix = returns.cov().to_numpy()
    return mu, pd.DataFrame(matrix * PERIODS_PER_YEAR, index=SYMBOLS, columns=SYMBOLS)


def test_recomputed_max_sharpe_equals_pyportfolioopt(
    demo_warehouse: str, use_warehouse: Callable[[str], None]
) -> None:
    from pypfopt import EfficientFrontier

    use_warehouse(demo_warehouse)
    settings = get_settings()
    run_date = _run_date(demo_warehouse)
    mu, cov = _reference_inputs(demo_warehouse, run_date)
    risk_free, cap = 0.02, 0.45
    if (mu <= risk_free).all():
        pytest.skip("every expected return is below the risk-free rate on this demo: no tangency")
    frontier = EfficientFrontier(mu, cov, weight_bounds=(0.0, cap))
    expected = pd.Series(frontier.max_sharpe(risk_free_rate=risk_free)).reindex(SYMBOLS)

    result = _whatif().recompute(SYMBOLS, 0.0, cap, risk_free, settings, run_date)

    weights = result.weights[result.weights["strategy"] == "max_sharpe"].set_index("symbol")[
        "weight"
    ]
    np.testing.assert_allclose(weights.reindex(SYMBOLS).to_numpy(), expected.to_numpy(), atol=2e-4)
    assert weights.max() <= cap + 1e-7 and weights.sum() == pytest.approx(1.0, abs=1e-7)
    best = result.portfolios.set_index("strategy").loc["max_sharpe"]
    reference_return, reference_vol, _ = frontier.portfolio_performance(risk_free_rate=risk_free)
    assert best["expected_return"] == pytest.approx(reference_return, rel=1e-3)
    assert best["volatility"] == pytest.approx(reference_vol, rel=1e-3)
    # the frontier runs from the min-volatility portfolio upwards
    assert result.frontier["volatility"].iloc[0] == pytest.approx(
        result.portfolios.set_index("strategy").loc["min_volatility", "volatility"], rel=1e-4
    )
    cloud = result.cloud  # random long-only portfolios (not held to the bounds), for the picture
    assert len(cloud) == 1000
    np.testing.assert_allclose(
        cloud["sharpe"], (cloud["expected_return"] - risk_free) / cloud["volatility"]
    )
    assert result.window_end < run_date and result.days > 100


def test_recompute_refuses_bad_sets_and_bounds_with_the_reason(
    demo_warehouse: str, use_warehouse: Callable[[str], None]
) -> None:
    use_warehouse(demo_warehouse)
    settings = get_settings()
    run_date = _run_date(demo_warehouse)
    whatif = _whatif()
    with pytest.raises(InvalidInput, match="pick between 2 and 12 assets"):
        whatif.recompute(["BTC"], 0.0, 0.5, 0.02, settings, run_date)
    with pytest.raises(InvalidInput, match="min_weight 0.6 is above max_weight 0.5"):
        whatif.recompute(SYMBOLS, 0.6, 0.5, 0.02, settings, run_date)
    with pytest.raises(InvalidInput, match="infeasible bounds"):
        whatif.recompute(SYMBOLS, 0.0, 0.2, 0.02, settings, run_date)  # 4 x 0.2 < 1
