"""The offline minute feed: deterministic candles consistent with the synthetic hourly market,
valid for bronze, and sent as Binance kline messages the consumer's parser reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pandas.testing import assert_frame_equal

from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource
from crypto_analytics.ingestion.validation import validate
from crypto_analytics.streaming.feed import Connected, Received
from crypto_analytics.streaming.klines import Kline, parse_message
from crypto_analytics.streaming.service import resolve_feed
from crypto_analytics.streaming.subscriptions import synthetic_subscriptions
from crypto_analytics.streaming.synthetic_feed import SyntheticFeed, SyntheticMinutes

HOUR = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("symbol", ["BTC", "PEPE", "USDT"])
def test_minutes_of_an_hour_rebuild_the_hourly_candle(settings, symbol):
    token = settings.token(symbol)
    minutes = SyntheticMinutes(settings).candles(token, HOUR, HOUR + timedelta(hours=1))
    hourly = (
        SyntheticSource(settings).fetch_ohlcv(token, "1h", HOUR, HOUR + timedelta(hours=1)).frame
    )
    assert len(minutes) == 60
    assert (
        minutes["timestamp"].iloc[0] == HOUR
        and minutes["timestamp"].diff().dropna().eq(timedelta(minutes=1)).all()
    )
    assert minutes["open"].iloc[0] == hourly["open"].iloc[0]
    assert minutes["close"].iloc[-1] == hourly["close"].iloc[0]
    assert np.isclose(minutes["volume"].sum(), hourly["volume"].iloc[0], rtol=1e-12)
    # each minute opens where the previous one closed
    assert (minutes["open"].iloc[1:].to_numpy() == minutes["close"].iloc[:-1].to_numpy()).all()
    checked = validate(minutes, "ohlcv", settings, now=HOUR + timedelta(hours=2))
    assert checked.rejected.empty and len(checked.valid) == 60


def test_a_minute_is_the_same_whichever_window_asks(settings):
    token = settings.token("ETH")
    wide = SyntheticMinutes(settings).candles(
        token, HOUR - timedelta(hours=3), HOUR + timedelta(hours=1)
    )
    narrow = SyntheticMinutes(settings).candles(
        token, HOUR + timedelta(minutes=17), HOUR + timedelta(minutes=20)
    )
    inside = wide[
        wide["timestamp"].between(HOUR + timedelta(minutes=17), HOUR + timedelta(minutes=19))
    ]
    assert_frame_equal(narrow, inside.reset_index(drop=True))
    single = SyntheticMinutes(settings).candle(token, HOUR + timedelta(minutes=18))
    assert single is not None and single["close"] == narrow["close"].iloc[1]


def test_only_intervals_that_divide_an_hour(settings):
    assert SyntheticMinutes(settings, "5m").per_hour == 12
    with pytest.raises(ConfigError, match="divide an hour"):
        SyntheticMinutes(settings, "4h")


def test_the_feed_closes_every_token_at_each_minute_and_updates_in_between(settings):
    subs = synthetic_subscriptions(settings, ["BTC", "SOL"])
    now = [datetime(2024, 5, 1, 12, 0, 50, tzinfo=UTC)]

    async def fake_sleep(stop: asyncio.Event, seconds: float) -> bool:
        now[0] += timedelta(seconds=seconds)
        return now[0] >= datetime(2024, 5, 1, 12, 2, 5, tzinfo=UTC)

    minutes = SyntheticMinutes(settings)
    feed = SyntheticFeed(minutes, subs, tick_seconds=5, clock=lambda: now[0], sleep=fake_sleep)

    async def collect() -> list:
        return [event async for event in feed.events(asyncio.Event())]

    events = asyncio.run(collect())
    assert isinstance(events[0], Connected)
    klines = [parse_message(e.raw) for e in events if isinstance(e, Received)]
    assert all(isinstance(k, Kline) for k in klines)
    closed = [k for k in klines if k.closed]
    assert [(k.market, k.open_time_ms) for k in closed] == [
        ("BTCUSD", int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)),
        ("SOLUSD", int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)),
        ("BTCUSD", int(datetime(2024, 5, 1, 12, 1, tzinfo=UTC).timestamp() * 1000)),
        ("SOLUSD", int(datetime(2024, 5, 1, 12, 1, tzinfo=UTC).timestamp() * 1000)),
    ]
    first = minutes.candle(settings.token("BTC"), datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    assert first is not None and float(closed[0].close) == first["close"]
    assert len([k for k in klines if not k.closed]) >= 2 * 12  # an update per token per tick


def test_offline_default_sources_select_the_synthetic_feed(settings, monkeypatch):
    assert resolve_feed(settings) == "binance"
    assert resolve_feed(settings, "synthetic") == "synthetic"
    monkeypatch.setenv("CRYPTO_INGESTION__DEFAULT_SOURCES", '["synthetic"]')
    from crypto_analytics.config import get_settings

    get_settings.cache_clear()
    assert resolve_feed(get_settings()) == "synthetic"
    with pytest.raises(ConfigError, match="choose from: auto, binance, synthetic"):
        resolve_feed(get_settings(), "kraken")
