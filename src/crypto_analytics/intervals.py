"""Candle intervals: the names we accept and their lengths.

One vocabulary (ccxt/Binance style) is used everywhere; sources translate it to their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from crypto_analytics.errors import ConfigError

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}


def interval_length(interval: str) -> timedelta:
    """Length of one candle; raises ConfigError naming the accepted values for anything else."""
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ConfigError(
            f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}"
        ) from None


def is_aligned(ts: datetime, interval: str) -> bool:
    """True when a UTC timestamp falls exactly on a candle boundary of the interval."""
    step = interval_length(interval)
    epoch_seconds = ts.timestamp()
    return epoch_seconds % step.total_seconds() == 0


def floor_to_interval(ts: datetime, interval: str) -> datetime:
    """The open time of the candle containing ts (UTC)."""
    step = int(interval_length(interval).total_seconds())
    seconds = int(ts.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step, tz=ts.tzinfo)


def check_window(start: datetime, end: datetime) -> None:
    """Every fetch window is [start, end) in aware UTC with start < end; anything else is a user error.

    Naive datetimes are refused rather than assumed UTC: a local-time window silently shifted by
    hours is the kind of bug nobody notices until the numbers are wrong.
    """
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise ConfigError(
                f"window {name} must be timezone-aware (UTC), got naive {value.isoformat()}"
            )
    if start >= end:
        raise ConfigError(f"empty window: start {start} is not before end {end}")
