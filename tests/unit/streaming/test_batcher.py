"""Micro-batches: when they are due, and what repeated close messages do."""

from __future__ import annotations

import json

from crypto_analytics.streaming.batcher import MicroBatcher
from crypto_analytics.streaming.klines import Kline, parse_message


def kline(market: str, minute: int, close: str = "1.5") -> Kline:
    k = {"t": minute * 60_000, "T": minute * 60_000 + 59_999, "s": market, "i": "1m", "o": "1.0",
         "c": close, "h": "2.0", "l": "0.5", "v": "3", "x": True, "q": "4.5"}  # fmt: skip
    parsed = parse_message(json.dumps({"data": {"e": "kline", "E": 1, "s": market, "k": k}}))
    assert isinstance(parsed, Kline)
    return parsed


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batcher(clock: Clock, size: int = 10, age: float = 5.0) -> MicroBatcher:
    return MicroBatcher(
        markets={"BTCUSDT", "ETHUSDT"}, batch_size=size, flush_seconds=age, clock=clock
    )


def test_due_when_every_market_closed_the_newest_minute():
    b = batcher(Clock())
    assert not b.due() and b.seconds_until_due() is None
    b.add(kline("BTCUSDT", 1))
    assert not b.due()
    b.add(kline("ETHUSDT", 1))
    assert b.due()
    assert [k.key for k in b.take()] == [("BTCUSDT", 60_000), ("ETHUSDT", 60_000)]
    assert len(b) == 0 and not b.due()


def test_due_at_the_age_limit_when_a_market_is_late():
    clock = Clock()
    b = batcher(clock, age=5.0)
    b.add(kline("BTCUSDT", 1))
    clock.now += 4.9
    assert not b.due() and abs(b.seconds_until_due() - 0.1) < 1e-9
    clock.now += 0.1
    assert b.due()


def test_due_at_the_size_limit():
    b = batcher(Clock(), size=3)
    for minute in (1, 2, 3):
        b.add(kline("BTCUSDT", minute))
    assert b.due() and len(b) == 3


def test_an_older_minute_complete_does_not_make_a_newer_partial_one_due():
    b = batcher(Clock())
    b.add(kline("BTCUSDT", 1))
    b.add(kline("ETHUSDT", 1))
    b.add(kline("BTCUSDT", 2))
    assert not b.due()  # minute 2 waits for ETH (or the age limit)


def test_repeated_messages_are_dropped_and_conflicts_keep_the_first():
    b = batcher(Clock())
    assert b.add(kline("BTCUSDT", 1, close="1.5"))
    assert not b.add(kline("BTCUSDT", 1, close="1.5"))
    assert not b.add(kline("BTCUSDT", 1, close="1.7"))
    assert (b.duplicates, b.conflicts) == (1, 1)
    (kept,) = b.take()
    assert kept.close == "1.5"


def test_restore_puts_a_failed_batch_back_without_duplicating():
    clock = Clock()
    b = batcher(clock, age=5.0)
    b.add(kline("BTCUSDT", 1))
    taken = b.take()
    clock.now += 1
    b.add(kline("BTCUSDT", 2))
    b.restore(taken)
    b.restore(taken)
    assert [k.key for k in b.take()] == [("BTCUSDT", 60_000), ("BTCUSDT", 120_000)]
