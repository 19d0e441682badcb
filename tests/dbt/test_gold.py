"""Gold marts against independent pandas computations on the same real market data.

One dbt build per module over real history (2024-01-01 → 2025-02-19): Binance daily candles
for 13 tokens (NEAR's 2024-06-15 removed to make a real gap), Yahoo hourly candles for BTC and
ETH from 2024-11-16 (one hour missing on 2025-01-02), CoinGecko market data (to 2024-10-09) and
two quarantined DOGE rows. Every expected value below is computed with pandas/numpy straight
from the shared CSV files or from a column another test already checked, never by the SQL under
test.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

START, END = "2024-01-01", "2025-02-19"
SYMBOLS = (
    "BTC", "ETH", "SOL", "AVAX", "ADA", "BNB", "XRP", "DOGE", "PEPE", "LINK", "NEAR", "UNI", "AAVE",
)  # fmt: skip
GAP_SYMBOL, GAP_DAY = "NEAR", pd.Timestamp("2024-06-15", tz="UTC")
HOURLY_SYMBOLS = ("BTC", "ETH")
LAYER_1 = ("BTC", "ETH", "SOL", "AVAX", "ADA")  # the Layer 1 tokens loaded (config/config.yaml)


def yahoo_hourly(data: Path, symbol: str) -> pd.DataFrame:
    """intraday/yahoo_budydeveloper/<SYM>-USD_1h.csv as bronze OHLCV rows (USD)."""
    raw = pd.read_csv(data / "intraday" / "yahoo_budydeveloper" / f"{symbol}-USD_1h.csv")
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(raw["datetime"], utc=True),
            "symbol": symbol,
            "interval": "1h",
            "open": raw["open"].astype("float64"),
            "high": raw["high"].astype("float64"),
            "low": raw["low"].astype("float64"),
            "close": raw["close"].astype("float64"),
            "volume": raw["volume"].astype("float64"),
            "quote_volume": float("nan"),
            "quote_currency": "USD",
            "source_api": "yahoo",
        }
    )


def binance_daily(data: Path, symbol: str) -> pd.DataFrame:
    """Close per UTC day from daily/binance_recent_rongyouwow, inside the test window."""
    raw = pd.read_csv(data / "daily" / "binance_recent_rongyouwow" / f"{symbol}USDT_1d.csv")
    raw["date"] = pd.to_datetime(raw["timestamp"], utc=True)
    raw = raw[
        (raw["date"] >= pd.Timestamp(START, tz="UTC"))
        & (raw["date"] <= pd.Timestamp(END, tz="UTC"))
    ]
    return raw.set_index("date")


def coingecko(data: Path, symbol: str) -> pd.DataFrame:
    raw = pd.read_csv(data / "daily" / "coingecko" / f"{symbol.lower()}-usd-max.csv")
    raw["snapped_at"] = pd.to_datetime(raw["snapped_at"].str.replace(" UTC", ""), utc=True)
    return raw.set_index("snapped_at")


@pytest.fixture(scope="module")
def gold(
    fresh_database: Callable[[], str],
    bronze_loader: Callable[[str], Any],
    dbt_factory: Callable[[str], Any],
    shared_data: Path,
) -> Any:
    """A database with the real history above, built once (silver and gold) with dbt build."""
    url = fresh_database()
    loader = bronze_loader(url)
    first, last = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")
    daily = pd.concat(loader.binance_daily_frame(s) for s in SYMBOLS)
    daily = daily[(daily["timestamp"] >= first) & (daily["timestamp"] <= last)]
    daily = daily[~((daily["symbol"] == GAP_SYMBOL) & (daily["timestamp"] == GAP_DAY))]
    loader.write_ohlcv(daily, "binance", "1d")
    hourly = pd.concat(yahoo_hourly(shared_data, s) for s in HOURLY_SYMBOLS)
    loader.write_ohlcv(hourly[hourly["timestamp"] < last + pd.Timedelta(days=1)], "yahoo", "1h")
    loader.coingecko_market(SYMBOLS, start=START)
    with psycopg.connect(url) as conn:
        for reason in ("high below low", "negative volume"):
            conn.execute(
                "insert into bronze.quarantine (_batch_id, source_api, dataset, symbol, reason, row_data)"
                " values (%s, 'binance', 'ohlcv', 'DOGE', %s, %s)",
                (uuid.uuid4(), reason, json.dumps({"symbol": "DOGEUSDT", "problem": reason})),
            )
    dbt = dbt_factory(url)
    dbt("build")
    return dbt


def daily_metrics(gold: Any, symbol: str) -> pd.DataFrame:
    frame = gold.frame(
        "select * from gold.daily_crypto_metrics where symbol = %s order by date", [symbol]
    )
    frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize("UTC")
    return frame.set_index("date")


def test_days_with_24_hourly_candles_are_built_from_them_with_pandas_vwap(
    gold: Any, shared_data: Path
) -> None:
    candles = yahoo_hourly(shared_data, "BTC")
    candles = candles[candles["timestamp"] < pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=1)]
    candles["date"] = candles["timestamp"].dt.floor("D")
    candles["tpv"] = (candles["high"] + candles["low"] + candles["close"]) / 3 * candles["volume"]
    by_day = candles.sort_values("timestamp").groupby("date")
    expected = pd.DataFrame(
        {
            "n": by_day.size(),
            "open": by_day["open"].first(),
            "high": by_day["high"].max(),
            "low": by_day["low"].min(),
            "close": by_day["close"].last(),
            "volume": by_day["volume"].sum(),
            "tpv": by_day["tpv"].sum(),
        }
    )
    expected["vwap"] = expected["tpv"] / expected["volume"].where(expected["volume"] > 0)
    complete = expected[expected["n"] == 24]
    assert len(complete) == len(expected) - 1  # 2025-01-02 misses an hour

    actual = daily_metrics(gold, "BTC")
    from_hourly = actual[actual["source_interval"] == "1h"]
    assert list(from_hourly.index) == list(complete.index)
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(from_hourly[column], complete[column], rtol=1e-12)
    np.testing.assert_allclose(
        from_hourly["vwap"].astype(float), complete["vwap"], rtol=1e-12, equal_nan=True
    )
    # Yahoo reports no volume on some early days: no VWAP there, never a 0/0 turned into a price
    assert from_hourly["vwap"].isna().sum() == complete["vwap"].isna().sum() == 4
    assert (from_hourly["source_api"] == "yahoo").all()

    # The day with 23 hourly candles falls back to Binance's daily candle, unchanged.
    binance = binance_daily(shared_data, "BTC")
    day = pd.Timestamp("2025-01-02", tz="UTC")
    assert actual.loc[day, "source_interval"] == "1d"
    assert actual.loc[day, "source_api"] == "binance"
    assert actual.loc[day, "close"] == binance.loc[day, "close"]
    assert actual.loc[day, "is_complete_day"]


@pytest.mark.parametrize("symbol", ["SOL", GAP_SYMBOL])
def test_returns_and_volatility_equal_pandas_on_binance_closes(
    gold: Any, shared_data: Path, symbol: str
) -> None:
    close = binance_daily(shared_data, symbol)["close"].astype(float)
    if symbol == GAP_SYMBOL:
        close = close.drop(GAP_DAY)
    close = close.asfreq("D")  # the gap stays a gap (NaN), never filled
    log_return = np.log(close / close.shift(1))
    expected_vol = log_return.rolling(30).std() * math.sqrt(365)

    actual = daily_metrics(gold, symbol)
    assert list(actual.index) == list(close.dropna().index)
    np.testing.assert_allclose(
        actual["log_return"].astype(float), log_return.dropna().reindex(actual.index),
        rtol=1e-12, atol=1e-15, equal_nan=True,
    )  # fmt: skip
    np.testing.assert_allclose(
        actual["daily_return"].astype(float),
        (close / close.shift(1) - 1).reindex(actual.index),
        rtol=1e-12, atol=1e-15, equal_nan=True,
    )  # fmt: skip
    np.testing.assert_allclose(
        actual["volatility_30d"].astype(float), expected_vol.reindex(actual.index),
        rtol=1e-9, equal_nan=True,
    )  # fmt: skip
    assert actual["volatility_30d"].notna().sum() == expected_vol.notna().sum() > 300
    if symbol == GAP_SYMBOL:
        after_gap = actual.loc[GAP_DAY + pd.Timedelta(days=1)]
        assert pd.isna(after_gap["daily_return"])
        assert after_gap["previous_date"] == (GAP_DAY - pd.Timedelta(days=1)).date()


def test_market_cap_is_the_snapshot_at_the_days_close(gold: Any, shared_data: Path) -> None:
    snapshots = coingecko(shared_data, "BTC")
    actual = daily_metrics(gold, "BTC")
    with_cap = actual[actual["market_cap"].notna()]
    expected = snapshots["market_cap"].reindex(with_cap.index + pd.Timedelta(days=1))
    np.testing.assert_allclose(with_cap["market_cap"], expected.to_numpy(), rtol=1e-15)
    assert with_cap.index.max() == pd.Timestamp("2024-10-07", tz="UTC")  # last snapshot 10-08
    # 2024-10-07 closed at 62224.00 on Binance; CoinGecko said 62287.39010510681 at 10-08 00:00
    row = actual.loc[pd.Timestamp("2024-10-07", tz="UTC")]
    assert row["market_price_deviation_bp"] == pytest.approx(
        (62287.39010510681 - 62224.0) * 10000 / 62224.0, rel=1e-12
    )


@pytest.mark.parametrize("window", [30, 90, 365])
def test_correlation_matrix_equals_pandas_pairwise_corr(gold: Any, window: int) -> None:
    returns = (
        gold.frame("select symbol, date, log_return from gold.daily_crypto_metrics")
        .pivot(index="date", columns="symbol", values="log_return")
        .astype(float)
    )
    latest = returns.index.max()
    in_window = returns[returns.index > latest - pd.Timedelta(days=window)]
    expected = in_window.corr()
    present = in_window.notna().astype(int)
    common_days = present.T @ present
    minimum = math.ceil(0.8 * window)

    actual = gold.frame("select * from gold.correlation_matrix where window_days = %s", [window])
    expected_pairs = {
        (a, b) for a in expected.index for b in expected.columns if common_days.loc[a, b] >= minimum
    }
    assert {
        (a, b) for a, b in zip(actual["symbol_a"], actual["symbol_b"], strict=True)
    } == expected_pairs
    assert len(expected_pairs) == 13 * 13  # every token has a full year here
    for row in actual.itertuples():
        assert row.correlation == pytest.approx(expected.loc[row.symbol_a, row.symbol_b], abs=1e-12)
        assert row.n_observations == common_days.loc[row.symbol_a, row.symbol_b]
    assert (actual.loc[actual["symbol_a"] == actual["symbol_b"], "correlation"] == 1.0).all()


def test_network_counts_strong_peers_from_the_matrix(gold: Any) -> None:
    matrix = gold.frame("select * from gold.correlation_matrix where window_days = 90")
    peers = matrix[matrix["symbol_a"] != matrix["symbol_b"]]
    expected = peers.groupby("symbol_a").agg(
        n_peers=("symbol_b", "size"),
        avg_correlation=("correlation", "mean"),
        n_strong=("correlation", lambda c: int((c.abs() >= 0.7).sum())),
    )
    actual = gold.frame("select * from gold.correlation_network where window_days = 90").set_index(
        "symbol"
    )
    assert set(actual.index) == set(expected.index)
    for symbol, row in expected.iterrows():
        assert actual.loc[symbol, "n_peers"] == row["n_peers"] == 12
        assert actual.loc[symbol, "avg_correlation"] == pytest.approx(
            row["avg_correlation"], abs=1e-12
        )
        assert actual.loc[symbol, "n_strong_peers"] == row["n_strong"]


def test_rolling_correlation_equals_pandas_time_window(gold: Any) -> None:
    returns = (
        gold.frame(
            "select symbol, date, log_return from gold.daily_crypto_metrics"
            " where symbol in ('BTC', %s)",
            [GAP_SYMBOL],
        )
        .pivot(index="date", columns="symbol", values="log_return")
        .astype(float)
    )
    returns.index = pd.to_datetime(returns.index)
    pair = returns.dropna()
    expected = pair["BTC"].rolling("30D").corr(pair[GAP_SYMBOL])
    count = pair["BTC"].rolling("30D").count()
    expected = expected[count >= 24]

    actual = gold.frame(
        "select date, correlation_30d, n_observations from gold.rolling_correlation"
        " where symbol_a = 'BTC' and symbol_b = %s order by date",
        [GAP_SYMBOL],
    )
    actual.index = pd.to_datetime(actual["date"])
    assert list(actual.index) == list(expected.index)
    np.testing.assert_allclose(actual["correlation_30d"], expected, atol=1e-12)
    # NEAR has no return on 06-15 (missing) nor 06-16 (no previous day): 28 in the window
    assert actual.set_index("date").loc[pd.Timestamp("2024-07-01").date(), "n_observations"] == 28


def test_rolling_correlation_pairs_every_token_with_each_anchor_once(gold: Any) -> None:
    pairs = gold.rows(
        "select symbol_a, count(distinct symbol_b) from gold.rolling_correlation group by 1 order by 1"
    )
    # BTC pairs with the 12 others; ETH with the 11 others than BTC (BTC-ETH is listed once)
    assert pairs == [("BTC", 12), ("ETH", 11)]


def test_layer_1_index_equals_pandas_chain_of_cap_weighted_returns(gold: Any) -> None:
    daily = gold.frame(
        "select symbol, date, daily_return, market_cap from gold.daily_crypto_metrics"
        " where symbol = any(%s)",
        [list(LAYER_1)],
    )
    daily["date"] = pd.to_datetime(daily["date"])
    returns = daily.pivot(index="date", columns="symbol", values="daily_return").astype(float)
    caps = daily.pivot(index="date", columns="symbol", values="market_cap").astype(float)
    returns = returns.asfreq("D")
    start_caps = caps.asfreq("D").shift(1)  # the cap snapped at the previous close
    weighted = returns.notna() & start_caps.notna()
    cap_return = (start_caps * returns).where(weighted).sum(axis=1) / start_caps.where(
        weighted
    ).sum(axis=1)
    index_return = cap_return.where(weighted.any(axis=1), returns.mean(axis=1))
    level = 100 * (1 + index_return.fillna(0)).cumprod()

    actual = gold.frame(
        "select * from gold.category_metrics where category = 'Layer 1' order by date"
    )
    actual.index = pd.to_datetime(actual["date"])
    assert actual.index[0] == pd.Timestamp(START)
    assert actual["index_level"].iloc[0] == 100.0
    np.testing.assert_allclose(actual["index_level"], level.reindex(actual.index), rtol=1e-10)
    np.testing.assert_allclose(
        actual["index_return"].iloc[1:], index_return.reindex(actual.index[1:]), rtol=1e-10
    )
    method = actual["weighting_method"]
    # the last ETH/SOL snapshots are at 10-09 00:00: start-of-day caps exist through 10-09
    assert (method[:"2024-10-09"].iloc[1:] == "market_cap").all()
    assert (method["2024-10-10":] == "equal").all()
    # AVAX and ADA have no CoinGecko export here: excluded on cap-weighted days, and counted
    assert (actual.loc["2024-01-02":"2024-10-08", "n_excluded_without_market_cap"] == 2).all()
    expected_vol = np.log1p(index_return).rolling(30).std() * math.sqrt(365)
    np.testing.assert_allclose(
        actual["volatility_30d"].astype(float), expected_vol.reindex(actual.index),
        rtol=1e-9, equal_nan=True,
    )  # fmt: skip


def test_data_quality_summary(gold: Any, shared_data: Path) -> None:
    summary = gold.frame("select * from gold.data_quality_summary").set_index("symbol")
    assert len(summary) == 38  # every token of the universe, data or not
    assert summary.loc["MKR", "freshness_status"] == "no_data"
    assert summary.loc["MKR", "candle_count"] == 0
    # freshness is measured from the newest candle's close: 23:00 + 1h, and the daily 02-19 + 1d
    assert summary.loc["BTC", "latest_candle_at"] == pd.Timestamp("2025-02-19 23:00", tz="UTC")
    assert summary.loc["SOL", "latest_candle_at"] == pd.Timestamp("2025-02-19", tz="UTC")
    for symbol in ("BTC", "SOL"):
        row = summary.loc[symbol]
        assert row["latest_close_at"] == pd.Timestamp("2025-02-20", tz="UTC")
        age = (row["measured_at"] - row["latest_close_at"]).total_seconds() / 3600
        assert row["age_hours"] == pytest.approx(age, rel=1e-9)
    assert summary.loc["BTC", "freshness_status"] == "stale"  # test data ends in 2025
    assert summary.loc["DOGE", "quarantined_rows"] == 2
    assert summary.loc["BTC", "quarantined_rows"] == 0
    assert (summary.loc[GAP_SYMBOL, "gap_count"], summary.loc[GAP_SYMBOL, "missing_candles"]) == (
        1,
        1,
    )
    # BTC/ETH hourly data misses 2025-01-02 04:00 or so: one more gap each
    assert summary.loc["BTC", "gap_count"] == 1
    assert summary.loc["SOL", "gap_count"] == 0

    # CoinGecko at D+1 00:00 against Binance's close of D, for the last 30 compared days.
    snapshots = coingecko(shared_data, "ETH")["price"]
    closes = binance_daily(shared_data, "ETH")["close"].astype(float)
    common = closes.index[(closes.index + pd.Timedelta(days=1)).isin(snapshots.index)]
    deviation = pd.Series(
        (snapshots.reindex(common + pd.Timedelta(days=1)).to_numpy() - closes[common].to_numpy())
        * 10000
        / closes[common].to_numpy(),
        index=common,
    )
    latest = deviation.index.max()
    recent = deviation[deviation.index > latest - pd.Timedelta(days=30)]
    eth = summary.loc["ETH"]
    assert eth["latest_deviation_date"] == latest.date() == pd.Timestamp("2024-10-08").date()
    assert eth["latest_deviation_bp"] == pytest.approx(deviation[latest], rel=1e-12)
    assert eth["max_abs_deviation_bp_30d"] == pytest.approx(recent.abs().max(), rel=1e-12)
    assert eth["deviation_days_30d"] == len(recent) == 30
