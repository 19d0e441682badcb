"""silver.crypto_prices_cleaned and friends on real Binance and Yahoo history.

One module database: Binance daily BTC/ETH/SOL, Yahoo daily BTC (older history and overlap),
Binance 1h BTC for January 2022, with three SOL days removed (a gap) and one SOL close
multiplied by 5 (a bad tick). Expected values are read from the shared files, not from silver.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from crypto_analytics.errors import DataQualityError, TransformError

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

GAP_DAYS = ("2024-06-10", "2024-06-11", "2024-06-12")
BAD_TICK_DAY = "2024-08-20"


@pytest.fixture(scope="module")
def built(fresh_database, bronze_loader, dbt_factory):
    url = fresh_database()
    loader = bronze_loader(url)
    loader.binance_daily(["BTC", "ETH"])
    sol = loader.binance_daily_frame("SOL")
    sol = sol[~sol["timestamp"].isin(pd.to_datetime(list(GAP_DAYS), utc=True))].copy()
    bad = sol["timestamp"] == pd.Timestamp(BAD_TICK_DAY, tz="UTC")
    sol.loc[bad, ["close", "high"]] = sol.loc[bad, ["close", "high"]] * 5
    loader.write_ohlcv(sol, "binance", "1d")
    loader.yahoo_daily(["BTC"])
    loader.binance_intraday(["BTC"], "1h", start="2022-01-01", end="2022-01-31 23:00")
    dbt = dbt_factory(url)
    dbt.build()
    return dbt


def _cleaned(built, symbol: str, interval: str = "1d") -> pd.DataFrame:
    return built.frame(
        "select * from silver.crypto_prices_cleaned where symbol = %s and interval = %s "
        "order by timestamp",
        (symbol, interval),
    )


def test_models_are_in_the_silver_schema(built):
    relations = dict(
        built.rows(
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'silver' order by 1"
        )
    )
    assert relations["crypto_prices_cleaned"] == "BASE TABLE"
    assert relations["technical_indicators"] == "BASE TABLE"
    assert relations["returns_and_risk"] == "BASE TABLE"
    assert relations["stg_bronze__crypto_prices"] == "VIEW"
    assert relations["token_universe"] == "VIEW"
    other = built.rows(
        "select table_schema from information_schema.tables "
        "where table_schema like '%%silver%%' and table_schema <> 'silver'"
    )
    assert other == []


def test_binance_wins_where_both_sources_have_the_candle(built, bronze_loader):
    loader = bronze_loader(built.url)
    binance = loader.binance_daily_frame("BTC").set_index("timestamp")["close"]
    yahoo = loader.yahoo_daily_frame("BTC").set_index("timestamp")["close"]
    got = _cleaned(built, "BTC").set_index("timestamp")

    assert len(got) == len(binance.index.union(yahoo.index))
    first_binance = pd.Timestamp("2017-08-17", tz="UTC")
    row = got.loc[first_binance]
    assert (row["source_api"], row["close"], row["quote_currency"], row["source_count"]) == (
        "binance", 4285.08, "USDT", 2,
    )  # fmt: skip
    day_before = got.loc[pd.Timestamp("2017-08-16", tz="UTC")]
    assert day_before["source_api"] == "yahoo"
    assert day_before["close"] == yahoo.loc[pd.Timestamp("2017-08-16", tz="UTC")]
    assert day_before["quote_currency"] == "USD"
    assert (got.loc[got.index >= first_binance, "source_api"] == "binance").all()
    # The return across the source switch is to the previous candle, whatever its source.
    assert row["pct_change"] == pytest.approx(4285.08 / day_before["close"] - 1, rel=1e-12)


def test_gaps_are_flagged_not_filled(built, bronze_loader):
    got = _cleaned(built, "SOL").set_index("timestamp")
    raw = bronze_loader(built.url).binance_daily_frame("SOL")
    assert len(got) == len(raw) - len(GAP_DAYS)
    for day in GAP_DAYS:
        assert pd.Timestamp(day, tz="UTC") not in got.index
    after = got.loc[pd.Timestamp("2024-06-13", tz="UTC")]
    assert (after["gap_candles"], after["has_gap"]) == (3, True)
    # One definition of a return in silver and gold: only between consecutive candles, so the
    # candle after a gap has none (a 4-day move is not one day's return).
    assert pd.isna(after["log_return"]) and pd.isna(after["pct_change"])
    day_after = got.loc[pd.Timestamp("2024-06-14", tz="UTC")]
    assert day_after["log_return"] == pytest.approx(
        np.log(day_after["close"] / after["close"]), rel=1e-12
    )
    assert int(got["has_gap"].sum()) == 1
    assert _cleaned(built, "BTC", "1h")["gap_candles"].max() == 0


def test_bad_tick_and_its_reversal_are_outliers(built):
    got = _cleaned(built, "SOL").set_index("timestamp")
    flagged = set(got.index[got["is_outlier"]].strftime("%Y-%m-%d"))
    assert {"2024-08-20", "2024-08-21"} <= flagged
    # Robust, not trigger-happy: well under 1 % of real candles.
    assert len(flagged) <= 0.01 * len(got)
    # Nothing is flagged before 30 previous returns exist.
    assert not got["is_outlier"].iloc[:31].any()


def test_hourly_volatility_is_annualised_with_8760_periods(built, bronze_loader):
    closes = (
        bronze_loader(built.url)
        .binance_intraday_frame("BTC", "1h")
        .set_index("timestamp")
        .loc["2022-01-01":"2022-01-31 23:00", "close"]
    )
    log_returns = np.log(closes / closes.shift(1))
    expected = log_returns.rolling(30).std() * np.sqrt(365 * 24)
    got = (
        built.frame(
            "select timestamp, volatility_30 from silver.returns_and_risk "
            "where symbol = 'BTC' and interval = '1h' order by timestamp"
        )
        .set_index("timestamp")["volatility_30"]
        .astype("float64")
    )
    assert len(got) == 744
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)
    assert got.isna().sum() == 30


def test_precedence_is_a_dbt_var(fresh_database, bronze_loader, dbt_factory):
    url = fresh_database()
    loader = bronze_loader(url)
    loader.binance_daily(["BTC"], start="2025-01-01", end="2025-01-10")
    loader.yahoo_daily(["BTC"], start="2025-01-01", end="2025-01-10")
    dbt = dbt_factory(url)
    dbt.build("--selector", "silver", "--vars", "{source_precedence: [yahoo, binance]}")
    yahoo = loader.yahoo_daily_frame("BTC").set_index("timestamp")["close"]
    got = _cleaned(dbt, "BTC").set_index("timestamp")
    assert (got["source_api"] == "yahoo").all() and len(got) == 10
    np.testing.assert_array_equal(got["close"].to_numpy(), yahoo.loc[got.index].to_numpy())


def test_a_failing_silver_test_stops_everything_downstream(
    fresh_database, bronze_loader, dbt_factory
):
    url = fresh_database()
    loader = bronze_loader(url)
    frame = loader.binance_daily_frame("ETH").tail(40).copy()
    frame.iloc[-1, frame.columns.get_loc("close")] = -1.0
    loader.write_ohlcv(frame, "binance", "1d")
    dbt = dbt_factory(url)
    with pytest.raises(DataQualityError, match="accepted_range_crypto_prices_cleaned_close"):
        dbt.build()
    built_tables = {
        r[0]
        for r in dbt.rows(
            "select table_name from information_schema.tables where table_schema = 'silver'"
        )
    }
    assert "crypto_prices_cleaned" in built_tables
    assert "technical_indicators" not in built_tables
    assert "returns_and_risk" not in built_tables


def test_source_freshness_fails_on_stale_bronze(fresh_database, bronze_loader, dbt_factory):
    url = fresh_database()
    bronze_loader(url).binance_daily(["BTC"], start="2026-02-01")
    dbt = dbt_factory(url)
    dbt("source", "freshness", "--select", "source:bronze.raw_crypto_prices")
    with psycopg.connect(url) as conn:
        conn.execute("update bronze.raw_crypto_prices set _ingested_at = now() - interval '2 days'")
    with pytest.raises(TransformError, match="raw_crypto_prices"):
        dbt("source", "freshness", "--select", "source:bronze.raw_crypto_prices")
