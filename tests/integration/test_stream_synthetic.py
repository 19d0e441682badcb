"""Offline: the consumer on the synthetic minute feed (a virtual clock, so minutes pass in
milliseconds) lands the start-up backfill and the live minutes through the same path, each
candle once and equal to the deterministic generator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from stream_fakes import bronze_candles, configure_stream, count_rows, run_until

from crypto_analytics.config import get_settings
from crypto_analytics.streaming.consumer import StreamConsumer
from crypto_analytics.streaming.heartbeat import HeartbeatWriter
from crypto_analytics.streaming.sink import CandleSink
from crypto_analytics.streaming.subscriptions import synthetic_subscriptions
from crypto_analytics.streaming.synthetic_feed import SyntheticFeed, SyntheticMinutes

pytestmark = pytest.mark.integration

START = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


class VirtualClock:
    """Time that moves only when the feed sleeps (each sleep also yields a few real ms)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, stop: asyncio.Event, seconds: float) -> bool:
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0.01)
        return stop.is_set()


def test_offline_feed_lands_backfill_and_live_minutes_once(warehouse_url, monkeypatch, tmp_path):
    configure_stream(
        monkeypatch,
        tmp_path,
        CRYPTO_STREAM__SYMBOLS='["BTC", "USDT", "PEPE"]',
        CRYPTO_STREAM__INITIAL_BACKFILL_MINUTES="5",
    )
    settings = get_settings()
    clock = VirtualClock(START)
    minutes = SyntheticMinutes(settings)
    subs = synthetic_subscriptions(settings)

    def build() -> StreamConsumer:
        return StreamConsumer(
            settings=settings,
            url=warehouse_url,
            feed=SyntheticFeed(minutes, subs, tick_seconds=5, clock=clock, sleep=clock.sleep),
            subscriptions=subs,
            sink=CandleSink(
                settings, warehouse_url, source_api="synthetic", interval="1m", clock=clock
            ),
            backfiller=minutes,
            heartbeat=HeartbeatWriter(warehouse_url),
            clock=clock,
        )

    run_until(
        build,
        lambda: count_rows(warehouse_url, "select count(*) from bronze.raw_crypto_prices") >= 3 * 8,
    )
    landed = bronze_candles(warehouse_url)
    landed["timestamp"] = pd.to_datetime(landed["timestamp"], utc=True)
    assert not landed.duplicated(["symbol", "timestamp"]).any()
    first = datetime(2024, 5, 1, 11, 55, tzinfo=UTC)
    for sub in subs:
        mine = landed[landed["symbol"] == sub.symbol].reset_index(drop=True)
        last = mine["timestamp"].max().to_pydatetime()
        assert mine["timestamp"].iloc[0] == first and last >= datetime(
            2024, 5, 1, 12, 2, tzinfo=UTC
        )
        expected = minutes.candles(sub.token, first, last + timedelta(minutes=1))
        assert_frame_equal(mine, expected, check_dtype=False)  # consecutive, none missing
    assert count_rows(warehouse_url, "select count(*) from bronze.quarantine") == 0
    assert count_rows(warehouse_url, "select backfilled_candles from stream.heartbeat") == 15
    assert (
        count_rows(
            warehouse_url,
            "select count(*) from stream.heartbeat where feed = 'synthetic' and status = 'stopped'",
        )
        == 1
    )
