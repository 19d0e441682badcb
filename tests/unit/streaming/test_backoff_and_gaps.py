"""Reconnect backoff (capped, jittered) and the gap windows a reconnect backfills."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from crypto_analytics.streaming.backfill import Gap, tail_gaps
from crypto_analytics.streaming.feed import backoff_delay


def test_backoff_doubles_from_the_initial_delay_and_stops_at_the_cap():
    low, high = random.Random(), random.Random()
    low.random = lambda: 0.0  # type: ignore[method-assign]
    high.random = lambda: 0.999999  # type: ignore[method-assign]
    assert backoff_delay(0, initial=1, cap=60) == 0.0
    lows = [backoff_delay(n, initial=1, cap=60, rng=low) for n in range(1, 10)]
    highs = [backoff_delay(n, initial=1, cap=60, rng=high) for n in range(1, 10)]
    assert lows == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert highs == pytest.approx([1, 2, 4, 8, 16, 32, 60, 60, 60], rel=1e-5)


def test_an_unreachable_venue_is_asked_rarely():
    """A day of failures at cap 60 s is at most 2,880 attempts (one per 30-60 s), not a storm."""
    rng = random.Random(7)
    elapsed, attempts = 0.0, 0
    while elapsed < 86_400:
        attempts += 1
        elapsed += backoff_delay(attempts, initial=1, cap=60, rng=rng)
    assert attempts < 2_900


NOW = datetime(2024, 5, 1, 12, 30, 20, tzinfo=UTC)


def test_tail_gaps_run_from_the_newest_candle_to_the_one_still_forming():
    gaps = tail_gaps(
        {"BTC": datetime(2024, 5, 1, 12, 25, tzinfo=UTC), "ETH": datetime(2024, 5, 1, 12, 29, tzinfo=UTC),
         "SOL": None},
        now=NOW, interval="1m", max_back=timedelta(hours=72), initial_back=timedelta(minutes=10),
    )  # fmt: skip
    assert gaps == [
        Gap(
            "BTC",
            datetime(2024, 5, 1, 12, 26, tzinfo=UTC),
            datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        ),
        Gap(
            "SOL",
            datetime(2024, 5, 1, 12, 20, tzinfo=UTC),
            datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        ),
    ]  # ETH's newest candle (12:29) is the last closed one: nothing to fetch
    assert gaps[0].candles(timedelta(minutes=1)) == 4


def test_tail_gaps_never_reach_further_back_than_the_cap():
    (gap,) = tail_gaps(
        {"BTC": datetime(2024, 4, 1, tzinfo=UTC)},
        now=NOW, interval="1m", max_back=timedelta(hours=2), initial_back=timedelta(minutes=10),
    )  # fmt: skip
    assert gap.start == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
