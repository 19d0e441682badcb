"""gold.token_daily_features: equal to the gold and silver columns it carries, one definition of a
return across a gap in silver and gold, and no value that reads a later day.

Real Binance daily history of BTC and SOL (../shared/data), with three SOL days removed (a gap).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

GAP = pd.date_range("2024-06-10", periods=3, freq="D", tz="UTC")
CUT = pd.Timestamp("2025-06-30", tz="UTC")


def _load(loader, until=None) -> None:
    btc = loader.binance_daily_frame("BTC")
    sol = loader.binance_daily_frame("SOL")
    sol = sol.loc[~sol["timestamp"].isin(GAP)]
    frame = pd.concat([btc, sol])
    if until is not None:
        frame = frame.loc[frame["timestamp"] <= until]
    loader.write_ohlcv(frame, "binance", "1d")


@pytest.fixture(scope="module")
def mart(fresh_database, bronze_loader, dbt_factory):
    url = fresh_database()
    _load(bronze_loader(url))
    dbt = dbt_factory(url)
    dbt.build("--select", "+token_daily_features", "--indirect-selection", "cautious")
    return dbt


def test_returns_after_a_gap_have_one_definition_in_silver_gold_and_the_mart(mart):
    frame = mart.frame(
        """
        select f.symbol, f.date, f.log_return as mart, g.log_return as gold,
               r.log_return as silver, c.log_return as cleaned, f.gap_days,
               f.volatility_30d as gold_vol, r.volatility_30 as silver_vol
        from gold.token_daily_features f
        join gold.daily_crypto_metrics g using (symbol, date)
        join silver.returns_and_risk r
          on r.symbol = f.symbol and r.interval = '1d' and (r."timestamp" at time zone 'UTC')::date = f.date
        join silver.crypto_prices_cleaned c
          on c.symbol = r.symbol and c.interval = r.interval and c."timestamp" = r."timestamp"
        """
    ).astype({c: float for c in ("mart", "gold", "silver", "cleaned", "gold_vol", "silver_vol")})
    for column in ("gold", "silver", "cleaned"):
        pd.testing.assert_series_equal(frame["mart"], frame[column], check_names=False, rtol=1e-12)
    after_gap = frame.loc[
        (frame["symbol"] == "SOL") & (frame["date"] == pd.Timestamp("2024-06-13").date())
    ]
    assert after_gap["gap_days"].tolist() == [3]
    assert after_gap["mart"].isna().all()  # not a 4-day move counted as one day
    # the volatility windows agree too: silver's 30 candles and gold's 30 calendar days
    pd.testing.assert_series_equal(frame["gold_vol"], frame["silver_vol"], check_names=False,
                                   rtol=1e-9)  # fmt: skip
    sol = frame.loc[frame["symbol"] == "SOL"].set_index("date").sort_index()
    gap_day = pd.Timestamp("2024-06-13").date()
    assert sol.loc[gap_day:, "silver_vol"].iloc[:30].isna().all()  # the window reaches the gap


def test_indicators_are_silver_s_daily_ones(mart):
    frame = mart.frame(
        """
        select f.rsi_14 as mart_rsi, t.rsi_14, f.sma_200 as mart_sma, t.sma_200,
               f.bb_percent_b as mart_b, t.bb_percent_b
        from gold.token_daily_features f
        join silver.technical_indicators t
          on t.symbol = f.symbol and t.interval = '1d' and (t."timestamp" at time zone 'UTC')::date = f.date
        """
    ).astype(float)
    assert len(frame) > 3000
    np.testing.assert_array_equal(frame["mart_rsi"], frame["rsi_14"])
    np.testing.assert_array_equal(frame["mart_sma"], frame["sma_200"])
    np.testing.assert_array_equal(frame["mart_b"], frame["bb_percent_b"])


def test_no_value_of_a_day_changes_when_later_days_arrive(
    fresh_database, bronze_loader, dbt_factory, mart
):
    """Built from history up to CUT, then again after the rest arrived: every row up to CUT is
    identical, which is what lets a forecast made at day t read the mart's rows up to t."""
    url = fresh_database()
    loader = bronze_loader(url)
    _load(loader, until=CUT)
    dbt = dbt_factory(url)
    dbt.build("--select", "+token_daily_features", "--indirect-selection", "cautious")
    query = "select * from gold.token_daily_features where date <= %s order by symbol, date"
    before = dbt.frame(query, [CUT.date()]).drop(columns=["_built_at", "_source_ingested_at"])
    full = mart.frame(query, [CUT.date()]).drop(columns=["_built_at", "_source_ingested_at"])
    assert len(before) > 2000
    pd.testing.assert_frame_equal(before, full)
