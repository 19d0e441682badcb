"""The synthetic source: deterministic, complete, valid and statistically plausible."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.frames import COLUMNS, Dataset
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource, frame_from_payload
from crypto_analytics.ingestion.validation import validate


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def source(settings: Settings) -> SyntheticSource:
    # a fixed clock: results must not depend on when the test runs
    return SyntheticSource(settings, clock=lambda: at(2026, 1, 1))


def ohlcv(source: SyntheticSource, symbol: str, interval: str, start: datetime, end: datetime):
    return source.fetch_ohlcv(source.settings.token(symbol), interval, start, end).frame


def daily_returns(source: SyntheticSource, start: datetime, end: datetime) -> pd.DataFrame:
    frames = [
        source.fetch_ohlcv(t, "1d", start, end).frame
        for t in source.settings.tokens
        if not t.stablecoin
    ]
    closes = pd.concat(frames).pivot(index="timestamp", columns="symbol", values="close")
    return np.log(closes).diff().dropna()


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["1d", "1h", "15m"])
def test_split_windows_give_the_same_rows_as_one_window(source, interval):
    whole = ohlcv(source, "ETH", interval, at(2021, 3, 1), at(2021, 3, 20))
    first = ohlcv(source, "ETH", interval, at(2021, 3, 1), at(2021, 3, 7, 13))
    second = ohlcv(source, "ETH", interval, at(2021, 3, 7, 13), at(2021, 3, 20))
    joined = pd.concat([first, second], ignore_index=True)
    assert len(first) > 0 and len(second) > 0
    pd.testing.assert_frame_equal(joined, whole, check_exact=True)


def test_overlapping_windows_and_fresh_instances_agree_exactly(settings, source):
    early = ohlcv(source, "DOGE", "1d", at(2020, 1, 1), at(2023, 1, 1)).set_index("timestamp")
    other = SyntheticSource(settings, clock=lambda: at(2026, 1, 1))
    late = ohlcv(other, "DOGE", "1d", at(2022, 6, 1), at(2024, 1, 1)).set_index("timestamp")
    common = early.index.intersection(late.index)
    assert len(common) == 214  # 2022-06-01 .. 2022-12-31
    pd.testing.assert_frame_equal(early.loc[common], late.loc[common], check_exact=True)


def test_values_are_pinned_for_seed_42(source):
    """Regression guard: changing the generator silently changes every synthetic bronze row."""
    frame = ohlcv(source, "BTC", "1d", at(2020, 1, 1), at(2020, 1, 3))
    assert frame["open"].tolist()[0] == 7200.0
    np.testing.assert_allclose(
        frame["close"].to_numpy(), [7179.296350481034, 7185.331493603118], rtol=1e-12
    )
    pepe = ohlcv(source, "PEPE", "1h", at(2024, 1, 1), at(2024, 1, 1, 2))
    np.testing.assert_allclose(
        pepe["close"].to_numpy(), [7.621148936852807e-07, 7.488824923015026e-07], rtol=1e-12
    )


def test_another_seed_gives_another_series(settings, monkeypatch):
    monkeypatch.setenv("CRYPTO_SOURCES__SYNTHETIC__SEED", "7")
    get_settings.cache_clear()
    reseeded = SyntheticSource(get_settings(), clock=lambda: at(2026, 1, 1))
    base = SyntheticSource(settings, clock=lambda: at(2026, 1, 1))
    a = ohlcv(base, "BTC", "1d", at(2021, 1, 1), at(2021, 2, 1))["close"].to_numpy()
    b = ohlcv(reseeded, "BTC", "1d", at(2021, 1, 1), at(2021, 2, 1))["close"].to_numpy()
    assert not np.allclose(a, b)


# --- coverage and window rules ---------------------------------------------------------------


def test_serves_every_token_of_the_universe(settings, source):
    assert len(settings.tokens) == 38
    frames = [
        source.fetch_ohlcv(t, "1d", at(2024, 1, 1), at(2024, 1, 8)).frame for t in settings.tokens
    ]
    counts = pd.concat(frames).groupby("symbol").size()
    assert sorted(counts.index) == sorted(t.symbol for t in settings.tokens)
    assert (counts == 7).all()
    market = source.fetch_market_data(settings.tokens, at(2024, 1, 1), at(2024, 1, 3)).frame
    assert market["symbol"].nunique() == 38
    assert {"MKR", "AGIX", "BUSD", "USDT"} <= set(market["symbol"])  # lacking on the exchange


def test_window_is_half_open_and_starts_at_the_configured_start(source):
    frame = ohlcv(source, "BTC", "1h", at(2019, 12, 31, 22), at(2020, 1, 1, 3))
    assert frame["timestamp"].tolist() == [
        pd.Timestamp(f"2020-01-01 0{h}:00", tz="UTC") for h in range(3)
    ]
    unaligned = ohlcv(source, "BTC", "1h", at(2021, 5, 5, 10, 30), at(2021, 5, 5, 13))
    assert [t.hour for t in unaligned["timestamp"]] == [11, 12]
    assert ohlcv(source, "BTC", "1d", at(2018, 1, 1), at(2019, 6, 1)).empty
    assert ohlcv(source, "BTC", "1d", at(2021, 1, 1), at(2021, 1, 1)).empty


def test_only_closed_candles_are_served(settings):
    now = at(2024, 3, 10, 14, 25)
    src = SyntheticSource(settings, clock=lambda: now)
    hourly = src.fetch_ohlcv(settings.token("SOL"), "1h", at(2024, 3, 10), at(2024, 3, 11)).frame
    assert hourly["timestamp"].iloc[-1] == pd.Timestamp("2024-03-10 13:00", tz="UTC")
    daily = src.fetch_ohlcv(settings.token("SOL"), "1d", at(2024, 3, 1), at(2024, 4, 1)).frame
    assert daily["timestamp"].iloc[-1] == pd.Timestamp("2024-03-09", tz="UTC")


def test_bad_requests_are_refused_with_the_reason(settings, source):
    token = settings.token("BTC")
    with pytest.raises(ConfigError, match="timezone-aware"):
        source.fetch_ohlcv(token, "1d", datetime(2021, 1, 1), at(2021, 2, 1))
    with pytest.raises(ConfigError, match="unknown interval '2h'"):
        source.fetch_ohlcv(token, "2h", at(2021, 1, 1), at(2021, 2, 1))
    with pytest.raises(ConfigError, match="before start"):
        source.fetch_ohlcv(token, "1d", at(2021, 2, 1), at(2021, 1, 1))
    with pytest.raises(ConfigError, match="depth must be positive"):
        source.fetch_orderbook(token, 0)
    with pytest.raises(ConfigError, match="before sources.synthetic.start"):
        source.fetch_orderbook(token, 5, at=at(2019, 5, 1))


# --- validity ----------------------------------------------------------------------------


def test_candles_are_valid_and_chained(settings, source):
    for token in settings.tokens:
        frame = source.fetch_ohlcv(token, "1d", at(2020, 1, 1), at(2022, 1, 1)).frame
        assert list(frame.columns) == COLUMNS[Dataset.OHLCV]
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all(), token.symbol
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all(), token.symbol
        assert (frame["low"] > 0).all() and (frame["volume"] > 0).all(), token.symbol
        # open = previous close, exactly
        assert (frame["open"].iloc[1:].to_numpy() == frame["close"].iloc[:-1].to_numpy()).all()
        typical = (frame["high"] + frame["low"] + frame["close"]) / 3
        np.testing.assert_allclose(frame["quote_volume"], frame["volume"] * typical, rtol=1e-12)
        assert set(frame["quote_currency"]) == {"USD"} and set(frame["source_api"]) == {"synthetic"}


def test_every_dataset_passes_validation(settings, source):
    now = at(2026, 1, 1)
    frames = [
        source.fetch_ohlcv(t, "1h", at(2025, 6, 1), at(2025, 6, 8)).frame for t in settings.tokens
    ]
    checks = [
        (pd.concat(frames, ignore_index=True), Dataset.OHLCV),
        (
            source.fetch_market_data(settings.tokens, at(2025, 1, 1), at(2025, 3, 1)).frame,
            Dataset.MARKET,
        ),
        (
            source.fetch_orderbook(settings.token("PEPE"), 50, at=at(2025, 5, 5, 5, 5)).frame,
            Dataset.ORDERBOOK,
        ),
    ]
    for frame, dataset in checks:
        result = validate(frame, dataset, settings, now=now)
        assert result.rejected.empty, result.rejected["reason"].head().tolist()
        assert len(result.valid) == len(frame)


def test_stablecoins_stay_within_one_percent(settings, source):
    stables = [t for t in settings.tokens if t.stablecoin]
    assert {t.symbol for t in stables} == {"USDT", "USDC", "DAI", "BUSD", "TUSD"}
    for token in stables:
        for interval, start in (("1d", at(2020, 1, 1)), ("1h", at(2025, 1, 1))):
            frame = source.fetch_ohlcv(token, interval, start, at(2026, 1, 1)).frame
            prices = frame[["open", "high", "low", "close"]].to_numpy()
            assert np.abs(prices - 1.0).max() < 0.01, (token.symbol, interval)
            # mean reverting: it wanders, but its average stays at the peg
            assert abs(frame["close"].mean() - 1.0) < 0.001
            assert frame["close"].std() > 0.0005


# --- realism -----------------------------------------------------------------------------


def test_within_category_correlation_clearly_exceeds_cross_category(settings, source):
    returns = daily_returns(source, at(2022, 1, 1), at(2024, 1, 1))
    assert len(returns) == 729
    correlation = returns.corr()
    category = {t.symbol: t.category for t in settings.tokens}
    within, across = [], []
    for a, b in itertools.combinations(correlation.columns, 2):
        (within if category[a] == category[b] else across).append(correlation.loc[a, b])
    assert np.mean(within) > np.mean(across) + 0.2
    assert 0.15 < np.mean(across) < 0.6  # crypto moves together, but not in lockstep


def test_returns_have_fat_tails_and_plausible_volatility(source):
    returns = daily_returns(source, at(2022, 1, 1), at(2024, 1, 1))
    pearson_kurtosis = returns["DOGE"].kurt() + 3.0  # pandas gives excess kurtosis
    assert pearson_kurtosis > 4.0
    vol = returns.std()
    assert 0.02 < vol["BTC"] < 0.04
    assert vol["DOGE"] > 1.5 * vol["BTC"] and vol["PEPE"] > 1.5 * vol["BTC"]


def test_volatility_is_of_the_order_of_real_btc(shared_data: Path, source):
    """Anchor against real data: Binance BTC/USDT daily closes, Oct 2020 – Oct 2022."""
    rows = json.loads((shared_data / "daily/binance_ccxt_freqtrade/BTC_USDT-1d.json").read_text())
    real = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close", "volume"])
    real.index = pd.to_datetime(real["ms"], unit="ms", utc=True)
    real_vol = np.log(real["close"]).diff()["2020-10-01":"2022-10-01"].std()
    assert real_vol == pytest.approx(0.0387, abs=5e-4)
    synthetic_vol = daily_returns(source, at(2020, 10, 1), at(2022, 10, 1))["BTC"].std()
    assert 0.5 < synthetic_vol / real_vol < 1.5


def test_volumes_are_larger_for_bigger_coins(source):
    start, end = at(2023, 1, 1), at(2024, 1, 1)
    median = {
        s: ohlcv(source, s, "1d", start, end)["quote_volume"].median()
        for s in ("BTC", "LINK", "CKB")
    }
    assert median["BTC"] > 10 * median["LINK"] > 10 * median["CKB"]
    assert 5e9 < median["BTC"] < 1e11


# --- market data, order books, payloads ------------------------------------------------------


def test_market_data_matches_the_daily_candles(settings, source):
    tokens = settings.select_tokens(["BTC", "USDC"])
    market = source.fetch_market_data(tokens, at(2020, 1, 1), at(2020, 2, 1)).frame
    btc = market[market["symbol"] == "BTC"]
    assert btc["timestamp"].iloc[0] == pd.Timestamp("2020-01-02", tz="UTC")  # none before start
    assert len(btc) == 30
    candles = ohlcv(source, "BTC", "1d", at(2020, 1, 1), at(2020, 2, 1))
    # the 00:00 snapshot of day D is the close of day D-1, with that day's volume
    assert btc["price"].tolist() == candles["close"].iloc[:-1].tolist()
    assert btc["total_volume"].tolist() == candles["quote_volume"].iloc[:-1].tolist()
    np.testing.assert_allclose(
        market["market_cap"], market["price"] * market["circulating_supply"], rtol=1e-12
    )
    assert (btc["circulating_supply"].diff().dropna() > 0).all()


def test_order_book_is_deterministic_sorted_and_has_a_positive_spread(settings, source):
    token = settings.token("ETH")
    when = at(2024, 2, 29, 13, 37, 42)
    book = source.fetch_orderbook(token, 10, at=when).frame
    row = book.iloc[0]
    assert row["timestamp"] == pd.Timestamp("2024-02-29 13:37", tz="UTC")
    bids, asks = np.array(row["bids"]), np.array(row["asks"])
    assert bids.shape == asks.shape == (10, 2) and row["depth"] == 10
    assert (np.diff(bids[:, 0]) < 0).all() and (np.diff(asks[:, 0]) > 0).all()
    assert row["best_bid"] == bids[0, 0] and row["best_ask"] == asks[0, 0]
    assert row["spread"] > 0 and row["best_bid"] < row["mid"] < row["best_ask"]
    hour = ohlcv(source, "ETH", "1h", at(2024, 2, 29, 13), at(2024, 2, 29, 14)).iloc[0]
    assert (
        min(hour["open"], hour["close"]) <= row["mid"] <= max(hour["open"], hour["close"]) * 1.0001
    )
    again = source.fetch_orderbook(token, 10, at=when + timedelta(seconds=10)).frame
    pd.testing.assert_frame_equal(book, again, check_exact=True)
    later = source.fetch_orderbook(token, 10, at=when + timedelta(minutes=1)).frame
    assert later["best_bid"].iloc[0] != row["best_bid"]


def test_payload_holds_exactly_the_generated_rows(settings, source):
    result = source.fetch_ohlcv(settings.token("SHIB"), "4h", at(2021, 5, 1), at(2021, 5, 3))
    assert result.source_api == "synthetic" and result.dataset is Dataset.OHLCV
    (payload,) = result.payloads
    assert payload.media_type == "application/json"
    assert "symbol=SHIB" in payload.request and "interval=4h" in payload.request
    document = json.loads(payload.body)
    assert document["data"][0][0] == 1619827200000  # 2021-05-01T00:00Z in epoch ms
    pd.testing.assert_frame_equal(frame_from_payload(payload.body), result.frame, check_exact=True)
    book = source.fetch_orderbook(settings.token("BTC"), 3, at=at(2022, 1, 1))
    pd.testing.assert_frame_equal(frame_from_payload(book.payloads[0].body), book.frame)
