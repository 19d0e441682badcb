"""Holdings files and the trade list: drift, threshold bands, cash, the documented example."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from crypto_ml.errors import InvalidInput
from crypto_ml.portfolio.holdings import CurrentPortfolio, current_portfolio, load_holdings
from crypto_ml.portfolio.rebalancing import plan_rebalance

PRICES = pd.Series({"BTC": 50_000.0, "ETH": 2_500.0, "SOL": 100.0, "LINK": 10.0})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "holdings.yaml"
    path.write_text(text)
    return path


def test_the_documented_example_file_loads(settings):
    holdings = load_holdings(settings.resolve(Path("config/holdings.yaml")), settings.tokens)
    assert holdings.quantities and holdings.quantities["BTC"] == 0.35
    assert holdings.cash == 2500


def test_quantities_are_valued_at_the_last_close(tmp_path, settings):
    path = _write(tmp_path, "quantities: {BTC: 1, ETH: 10}\ncash: 25000\n")
    current = current_portfolio(load_holdings(path, settings.tokens), PRICES)
    assert current.value == 100_000
    assert current.weights.to_dict() == {"BTC": 0.5, "ETH": 0.25}
    assert current.cash_weight == 0.25


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quantities: {BTC: 1}\nweights: {BTC: 1}\n", "exactly one of `quantities` or `weights`"),
        ("cash: 10\n", "exactly one of `quantities` or `weights`"),
        ("quantities: {BTC: -1}\n", "negative holdings for BTC"),
        ("weights: {BTC: 0.7, ETH: 0.6}\n", "weights sum to 1.3000, more than 1"),
        ("quantities: {BTCC: 1}\n", "unknown symbols BTCC; the universe is: AAVE, ADA"),
        ("quantities: {BTC: 1}\nportfolio_value: 5\n", "`portfolio_value` goes with `weights`"),
        ("quantities: {BTC: 1}\nlots: 3\n", "lots: Extra inputs are not permitted"),
        ("quantities: [BTC\n", "is not valid YAML"),
    ],
)
def test_bad_holdings_files_are_refused_with_the_reason(tmp_path, settings, text, message):
    with pytest.raises(InvalidInput, match="holdings file") as info:
        load_holdings(_write(tmp_path, text), settings.tokens)
    assert message in str(info.value)


def test_a_missing_file_or_price_is_a_clear_error(tmp_path, settings):
    with pytest.raises(InvalidInput, match="not found: copy config/holdings.yaml"):
        load_holdings(tmp_path / "nope.yaml", settings.tokens)
    holdings = load_holdings(_write(tmp_path, "quantities: {DOGE: 100}\n"), settings.tokens)
    with pytest.raises(InvalidInput, match="no close in gold for held tokens DOGE"):
        current_portfolio(holdings, PRICES)


def test_no_trade_inside_the_band_and_back_to_target_outside_it():
    current = CurrentPortfolio(
        pd.Series({"BTC": 0.52, "ETH": 0.20, "LINK": 0.28}), 0.0, 100_000.0, PRICES
    )
    target = pd.Series({"BTC": 0.50, "ETH": 0.30, "SOL": 0.20})
    plan = plan_rebalance(current, target, band_absolute=0.03, band_relative=0.0, cost_bps=0)
    lines = {line.symbol: line for line in plan.lines}
    # Buys 0.30 > sells 0.28 and no cash: every buy is scaled so cash never goes negative.
    scale = 0.28 / 0.30
    assert plan.buys_scaled_by == pytest.approx(scale)
    assert lines["BTC"].action == "hold" and lines["BTC"].trade_weight == 0  # drift 2 % < 3 %
    assert lines["ETH"].action == "buy" and lines["ETH"].trade_weight == pytest.approx(0.10 * scale)
    assert lines["SOL"].action == "buy" and lines["SOL"].trade_weight == pytest.approx(0.2 * scale)
    assert lines["LINK"].action == "sell" and lines["LINK"].trade_weight == pytest.approx(-0.28)
    assert lines["SOL"].trade_value == pytest.approx(20_000 * scale)
    assert lines["SOL"].trade_quantity == pytest.approx(200 * scale)
    assert lines["LINK"].trade_quantity == pytest.approx(-2_800)
    assert plan.cash_after == pytest.approx(0.0, abs=1e-12)
    assert {t.symbol for t in plan.trades} == {"ETH", "SOL", "LINK"}


def test_relative_band_cash_and_costs():
    current = CurrentPortfolio(pd.Series({"BTC": 0.45, "ETH": 0.30}), 0.25, None, PRICES)
    target = pd.Series({"BTC": 0.60, "ETH": 0.40})
    # bands: BTC max(0.01, 0.25 x 0.6) = 0.15 -> drift 0.15 is inside; ETH 0.10 -> 0.10 inside
    plan = plan_rebalance(current, target, band_absolute=0.01, band_relative=0.25, cost_bps=10)
    assert plan.trades == []
    assert plan.cash_after == pytest.approx(0.25)
    plan = plan_rebalance(current, target, band_absolute=0.01, band_relative=0.1, cost_bps=10)
    # Cash 0.25 pays for buys of 0.25 and their 10 bp fee: buys shrink by 1 / 1.001.
    scale = 1 / 1.001
    assert plan.buys_scaled_by == pytest.approx(scale)
    trades = {t.symbol: t.trade_weight for t in plan.trades}
    assert trades == pytest.approx({"BTC": 0.15 * scale, "ETH": 0.1 * scale})
    assert plan.turnover == pytest.approx(0.25 * scale)
    assert plan.estimated_cost == pytest.approx(0.25 * scale * 0.001)
    assert plan.cash_after == pytest.approx(0.0, abs=1e-12)
    assert all(line.trade_value is None for line in plan.lines)  # value unknown
