"""The synthetic source: one price path across intervals, deterministic, complete, valid and
statistically plausible."""

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
from crypto_analytics.ingestion.sources.synthetic import (
    SERVED_INTERVALS,
    SyntheticSource,
    frame_from_payload,
)
from crypto_analytics.ingestion.validation import validate
from crypto_analytics.intervals import INTERVALS, interval_length

#: Every interval the source serves, coarsest first (1d, 4h, 1h, 30m, 15m, 5m, 1m).
LADDER = sorted(SERVED_INTERVALS, key=interval_length, reverse=True)
#: A stablecoin, a tiny-priced meme coin, the majors and the token whose demo return exploded.
CONSISTENCY_SYMBOLS = ["BTC", "ETH", "USDT", "DAI", "PEPE", "SHIB", "AXS"]


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


@pytest.mark.parametrize("interval", LADDER)
def test_split_windows_give_the_same_rows_as_one_window(source, interval):
    whole = ohlcv(source, "ETH", interval, at(2021, 3, 1), at(2021, 3, 20))
    first = ohlcv(source, "ETH", interval, at(2021, 3, 1), at(2021, 3, 7, 13))
    second = ohlcv(source, "ETH", interval, at(2021, 3, 7, 13), at(2021, 3, 20))
    joined = pd.concat([first, second], ignore_index=True)
    assert len(first) > 0 and len(second) > 0
    pd.testing.assert_frame_equal(joined, whole, check_exact=True)


@pytest.mark.parametrize("interval", LADDER)
@pytest.mark.parametrize("symbol", ["SOL", "USDC", "PEPE"])
def test_a_candle_is_identical_whatever_window_asks_for_it(settings, source, symbol, interval):
    """Single candles, windows that start mid-way, windows crossing the generator's internal
    blocks, and a fresh instance: the same candle, bit for bit."""
    step = interval_length(interval)
    start = at(2023, 11, 27, 8)
    wide = ohlcv(source, symbol, interval, start - 300 * step, start + 300 * step)
    wide = wide.set_index("timestamp")
    fresh = SyntheticSource(settings, clock=lambda: at(2026, 1, 1))
    for offset in (-257, -1, 0, 1, 63, 64, 199):
        when = start + offset * step
        single = ohlcv(fresh if offset % 2 else source, symbol, interval, when, when + step)
        assert len(single) == 1
        pd.testing.assert_frame_equal(
            single.set_index("timestamp"), wide.loc[[single["timestamp"].iloc[0]]], check_exact=True
        )
    late = ohlcv(fresh, symbol, interval, start + 17 * step, start + 290 * step)
    late = late.set_index("timestamp")
    pd.testing.assert_frame_equal(late, wide.loc[late.index], check_exact=True)


# --- one price path across intervals ---------------------------------------------------------


def aggregate(frame: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Candles rolled up to `interval` as an exchange (and gold) would: first open, max high,
    min low, last close, summed volumes; with how many finer candles went into each."""
    bucket = frame["timestamp"].dt.floor(pd.Timedelta(interval_length(interval)))
    grouped = frame.groupby(bucket)
    return pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
            "quote_volume": grouped["quote_volume"].sum(),
            "count": grouped.size(),
        }
    )


@pytest.mark.parametrize("symbol", CONSISTENCY_SYMBOLS)
def test_finer_candles_aggregate_to_every_coarser_candle(source, symbol):
    """For every pair of intervals: the finer candles of a coarser candle's span rebuild it
    (open, high, low and close exactly; volume within rounding), across a month boundary."""
    start, end = at(2024, 2, 28), at(2024, 3, 2)
    frames = {i: ohlcv(source, symbol, i, start, end) for i in LADDER}
    for position, coarse in enumerate(LADDER):
        expected = frames[coarse].set_index("timestamp")
        per_candle = interval_length(coarse)
        for fine in LADDER[position + 1 :]:
            rolled = aggregate(frames[fine], coarse)
            assert (rolled["count"] == per_candle // interval_length(fine)).all()
            assert rolled.index.equals(expected.index), (symbol, coarse, fine)
            for column in ("open", "high", "low", "close"):
                np.testing.assert_array_equal(
                    rolled[column].to_numpy(), expected[column].to_numpy(), err_msg=f"{fine}"
                )
            np.testing.assert_allclose(rolled["volume"], expected["volume"], rtol=1e-9)
            # quote volume is volume x typical price at each interval: close, not exact
            np.testing.assert_allclose(rolled["quote_volume"], expected["quote_volume"], rtol=0.05)


def test_the_day_the_hourly_history_starts_does_not_jump(settings, source):
    """The demo's shape: two years of daily candles and the last 60 days hourly. Days rebuilt
    the way gold does (the finest complete interval) have no return at the switch from daily
    to hourly days that is out of line with the others, for any token."""
    end = at(2025, 6, 1)
    hourly_start = end - timedelta(days=60)
    for token in settings.tokens:
        daily = source.fetch_ohlcv(token, "1d", end - timedelta(days=730), end).frame
        hourly = source.fetch_ohlcv(token, "1h", hourly_start, end).frame
        rebuilt = pd.concat(
            [
                daily.set_index("timestamp")["close"][: hourly_start - timedelta(days=1)],
                aggregate(hourly, "1d")["close"],
            ]
        )
        assert rebuilt.index.is_unique and len(rebuilt) == 730
        returns = np.log(rebuilt).diff().dropna().abs()
        at_switch = returns.loc[pd.Timestamp(hourly_start)]
        assert at_switch < returns.drop(pd.Timestamp(hourly_start)).max(), token.symbol
        np.testing.assert_allclose(
            rebuilt.to_numpy(), daily.set_index("timestamp")["close"].to_numpy(), rtol=1e-12
        )


def test_serves_every_interval_that_nests_in_a_day(source):
    assert set(LADDER) == {i for i in INTERVALS if timedelta(days=1) % INTERVALS[i] == timedelta(0)}
    assert LADDER == ["1d", "4h", "1h", "30m", "15m", "5m", "1m"]
    for interval in LADDER:
        source.check_interval(interval)


def test_market_snapshots_agree_with_the_close_at_their_instant(settings, source):
    tokens = settings.select_tokens(["ETH", "PEPE", "TUSD"])
    market = source.fetch_market_data(tokens, at(2025, 3, 1), at(2025, 3, 4)).frame
    assert len(market) == 9
    for row in market.itertuples():
        token = settings.token(row.symbol)
        for interval in ("1h", "1m"):
            step = interval_length(interval)
            last = source.fetch_ohlcv(token, interval, row.timestamp - step, row.timestamp).frame
            assert last["close"].iloc[0] == row.price, (row.symbol, interval)
        assert row.market_cap == pytest.approx(row.price * row.circulating_supply, rel=1e-12)


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
        pepe["close"].to_numpy(), [6.189682494194888e-05, 6.150582240663495e-05], rtol=1e-12
    )
    minutes = ohlcv(source, "BTC", "1m", at(2024, 1, 1), at(2024, 1, 1, 0, 2))
    np.testing.assert_allclose(
        minutes["close"].to_numpy(), [42827.744261665786, 42829.32704475099], rtol=1e-12
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


@pytest.mark.parametrize(
    ("interval", "hours"), [("4h", 24 * 60), ("1h", 24 * 14), ("15m", 48), ("1m", 3)]
)
def test_intraday_candles_are_valid_and_chained_for_every_token(settings, source, interval, hours):
    end = at(2025, 9, 9, 7)
    for token in settings.tokens:
        frame = source.fetch_ohlcv(token, interval, end - timedelta(hours=hours), end).frame
        assert len(frame) == timedelta(hours=hours) // interval_length(interval)
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all(), token.symbol
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all(), token.symbol
        assert (frame["low"] > 0).all() and (frame["volume"] > 0).all(), token.symbol
        assert (frame["open"].iloc[1:].to_numpy() == frame["close"].iloc[:-1].to_numpy()).all()
        typical = (frame["high"] + frame["low"] + frame["close"]) / 3
        np.testing.assert_allclose(frame["quote_volume"], frame["volume"] * typical, rtol=1e-12)
        checked = validate(frame, Dataset.OHLCV, settings, now=at(2026, 1, 1))
        assert checked.rejected.empty, checked.rejected["reason"].head().tolist()


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
        for interval, start in (
            ("1d", at(2020, 1, 1)),
            ("1h", at(2025, 1, 1)),
            ("1m", at(2025, 12, 25)),
        ):
            frame = source.fetch_ohlcv(token, interval, start, at(2026, 1, 1)).frame
            prices = frame[["open", "high", "low", "close"]].to_numpy()
            assert np.abs(prices - 1.0).max() < 0.01, (token.symbol, interval)
            if interval != "1m":  # over a year or more:
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


def test_intraday_returns_are_plausible(settings, source):
    """Hourly returns scale to daily volatility like a random walk (within 30 %), have fat
    tails, and move together more within a category than across; minute volumes vary but no
    minute is empty or holds almost all of its hour."""
    start, end = at(2024, 1, 1), at(2024, 7, 1)
    symbols = ["BTC", "ETH", "SOL", "DOGE", "SHIB", "PEPE", "UNI", "AAVE"]
    hourly = pd.concat(
        [
            ohlcv(source, s, "1h", start, end).set_index("timestamp")["close"].rename(s)
            for s in symbols
        ],
        axis=1,
    )
    daily = pd.concat(
        [
            ohlcv(source, s, "1d", start, end).set_index("timestamp")["close"].rename(s)
            for s in symbols
        ],
        axis=1,
    )
    hourly_returns, daily_returns = np.log(hourly).diff().dropna(), np.log(daily).diff().dropna()
    ratio = hourly_returns.std() * np.sqrt(24) / daily_returns.std()
    assert ratio.between(0.7, 1.3).all(), ratio.round(2).to_dict()
    assert (hourly_returns.kurt() > 1.0).all()  # excess kurtosis: fat tails
    correlation = hourly_returns.corr()
    category = {t.symbol: t.category for t in settings.tokens}
    within, across = [], []
    for a, b in itertools.combinations(symbols, 2):
        (within if category[a] == category[b] else across).append(correlation.loc[a, b])
    assert np.mean(within) > np.mean(across) + 0.1 and np.mean(across) > 0.1

    minutes = ohlcv(source, "ETH", "1m", at(2024, 5, 1), at(2024, 5, 3))
    share = minutes["volume"] / minutes.groupby(minutes["timestamp"].dt.floor("h"))[
        "volume"
    ].transform("sum")
    assert share.min() > 1e-4 and share.max() < 0.5


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
    # the book sits on the market's price at that minute: the open of its minute candle
    minute = ohlcv(source, "ETH", "1m", at(2024, 2, 29, 13, 37), at(2024, 2, 29, 13, 38))
    assert row["mid"] == pytest.approx(minute["open"].iloc[0], rel=1e-12)
    hour = ohlcv(source, "ETH", "1h", at(2024, 2, 29, 13), at(2024, 2, 29, 14)).iloc[0]
    assert hour["low"] <= row["mid"] <= hour["high"]
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


# --- consumers -------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["1m", "5m"])
def test_the_streams_offline_feed_sends_the_sources_own_candles(settings, source, interval):
    """The stream's synthetic feed is this market: its candles are the source's, so the minutes
    the stream lands in bronze roll up to the hours and days batch ingestion lands."""
    from crypto_analytics.streaming.synthetic_feed import SyntheticMinutes

    token = settings.token("DOGE")
    start, end = at(2025, 4, 30, 22, 17), at(2025, 5, 1, 2)
    streamed = SyntheticMinutes(settings, interval).candles(token, start, end)
    served = ohlcv(source, "DOGE", interval, start, end)
    pd.testing.assert_frame_equal(streamed, served, check_exact=True)
    one = SyntheticMinutes(settings, interval).candle(token, at(2025, 5, 1, 1, 55))
    same = served[served["timestamp"] == at(2025, 5, 1, 1, 55)]
    assert one is not None and one["close"] == same["close"].iloc[0]
    hours = aggregate(served[served["timestamp"] >= at(2025, 4, 30, 23)], "1h")
    hourly = ohlcv(source, "DOGE", "1h", at(2025, 4, 30, 23), end).set_index("timestamp")
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(hours[column].to_numpy(), hourly[column].to_numpy())
