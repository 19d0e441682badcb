"""What a feed tells the consumer: connected, a message, disconnected. Both feeds speak it.

Why a small event protocol: the consumer's path (parse, batch, land, backfill after a reconnect,
heartbeat) is the same for Binance and for the offline synthetic feed; only where the text frames
come from differs, so the offline `make up` exercises exactly the code that runs live.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Connected:
    """A connection is up. `reconnect` is True for every connection after the first."""

    url: str
    reconnect: bool


@dataclass(frozen=True)
class Received:
    """One text frame as received."""

    raw: str
    received_at: datetime


@dataclass(frozen=True)
class Disconnected:
    """The connection is down (or could not be opened); the next attempt is in `retry_in` s.

    `failures` counts attempts in a row that did not give a lasting connection."""

    reason: str
    retry_in: float
    failures: int
    next_url: str


FeedEvent = Connected | Received | Disconnected


class Feed(Protocol):
    """A source of kline text frames for one set of subscriptions."""

    name: str
    source_api: str

    def events(self, stop: asyncio.Event) -> AsyncIterator[FeedEvent]: ...

    def reconnect_now(self, reason: str) -> None: ...

    @property
    def label(self) -> str: ...


def backoff_delay(
    failures: int, *, initial: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds before attempt number failures+1: initial x 2^(failures-1), capped, "equal jitter"
    (half fixed, half random), so many clients never retry in lockstep and a dead venue is asked
    at most once per cap/2..cap seconds."""
    if failures <= 0:
        return 0.0
    base = min(cap, initial * 2 ** (failures - 1))
    draw = (rng or random).random()
    return base / 2 + draw * base / 2


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until the event is set or `timeout` seconds pass; True when it is set.

    asyncio.timeout rather than asyncio.wait_for: on Python 3.11 wait_for swallows a cancellation
    that arrives while the awaited event completes, and a task that ignores its cancellation
    hangs the shutdown."""
    if timeout is None:
        await event.wait()
        return True
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when stop is set; True when stopped."""
    if seconds <= 0:
        return stop.is_set()
    return await wait_event(stop, seconds)
