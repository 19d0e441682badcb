"""Binance kline stream messages, parsed without any I/O, and closed candles to the OHLCV frame.

A message on the combined stream is `{"stream": "btcusdt@kline_1m", "data": {"e": "kline",
"E": event ms, "s": "BTCUSDT", "k": {...}}}`; a raw stream sends `data` alone. Field `k.x` is true
only on the last update of a candle, which is the only one we persist: an open candle is still
changing. Other events on the same connection (depth, bookTicker, aggTrade, subscription answers)
are ignored; `serverShutdown` asks the client to reconnect. Anything unreadable is a
`MalformedMessage` naming the problem, never an exception that stops the stream.

The frame follows the REST klines exactly (crypto_analytics.ingestion.sources.binance_format):
same open-time conversion, same decimal strings, same quote volume, so a candle that arrives
on the stream and again from the REST backfill lands as the same row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crypto_analytics.ingestion.frames import Dataset, conform, empty_frame
from crypto_analytics.ingestion.sources.binance_format import open_times_to_utc
from crypto_analytics.intervals import interval_length
from crypto_analytics.streaming.subscriptions import Subscription


class MalformedMessage(ValueError):
    """A message that is not JSON, or a kline event missing or mistyping a field."""


@dataclass(frozen=True)
class Kline:
    """One kline update as received. Prices stay the decimal strings Binance sent."""

    market: str
    interval: str
    open_time_ms: int
    close_time_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    closed: bool
    event_time_ms: int
    raw: str

    @property
    def key(self) -> tuple[str, int]:
        return self.market, self.open_time_ms

    def same_values(self, other: Kline) -> bool:
        return (self.open, self.high, self.low, self.close, self.volume, self.quote_volume) == (
            other.open,
            other.high,
            other.low,
            other.close,
            other.volume,
            other.quote_volume,
        )


@dataclass(frozen=True)
class ServerShutdown:
    """Binance's notice that this connection is about to close: reconnect now."""

    event_time_ms: int | None


@dataclass(frozen=True)
class Ignored:
    """A well-formed message that carries no kline (other streams, subscription answers)."""

    what: str


ParsedMessage = Kline | ServerShutdown | Ignored

_KLINE_FIELDS = {
    "t": int,
    "T": int,
    "s": str,
    "i": str,
    "o": str,
    "c": str,
    "h": str,
    "l": str,
    "v": str,
    "x": bool,
    "q": str,
}


def _event_type(payload: Mapping[str, Any]) -> str | None:
    """`e` of a raw event, or of the `event` wrapper the WebSocket API uses for serverShutdown."""
    if isinstance(payload.get("e"), str):
        return str(payload["e"])
    inner = payload.get("event")
    if isinstance(inner, Mapping) and isinstance(inner.get("e"), str):
        return str(inner["e"])
    return None


def parse_message(raw: str | bytes) -> ParsedMessage:
    """Classify and parse one text frame of the stream."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise MalformedMessage(f"not JSON ({exc}): {text[:120]!r}") from None
    if not isinstance(message, Mapping):
        raise MalformedMessage(f"not a JSON object: {text[:120]!r}")
    payload = message.get("data", message)
    if not isinstance(payload, Mapping):
        raise MalformedMessage(f"`data` is not an object: {text[:120]!r}")
    kind = _event_type(payload) or _event_type(message)
    if kind == "serverShutdown":
        inner = payload.get("event", payload)
        when = inner.get("E") if isinstance(inner, Mapping) else None
        return ServerShutdown(int(when) if isinstance(when, int) else None)
    if kind != "kline":
        if "result" in message and "id" in message:
            return Ignored("subscription answer")
        return Ignored(str(kind or message.get("stream") or "unknown message"))
    k = payload.get("k")
    if not isinstance(k, Mapping):
        raise MalformedMessage(f"kline event without a `k` object: {text[:160]!r}")
    for name, kind_type in _KLINE_FIELDS.items():
        value = k.get(name)
        ok = (
            isinstance(value, kind_type) and not isinstance(value, bool)
            if kind_type is int
            else isinstance(value, kind_type)
        )
        if not ok:
            raise MalformedMessage(
                f"kline field k.{name} is {value!r:.40}, expected {kind_type.__name__}: "
                f"{text[:160]!r}"
            )
    event_time = payload.get("E")
    return Kline(
        market=str(k["s"]).upper(),
        interval=str(k["i"]),
        open_time_ms=int(k["t"]),
        close_time_ms=int(k["T"]),
        open=k["o"],
        high=k["h"],
        low=k["l"],
        close=k["c"],
        volume=k["v"],
        quote_volume=k["q"],
        trades=int(k.get("n") or 0),
        closed=bool(k["x"]),
        event_time_ms=int(event_time) if isinstance(event_time, int) else int(k["T"]),
        raw=text,
    )


def klines_frame(
    klines: Sequence[Kline], subscriptions: Mapping[str, Subscription], source_api: str
) -> pd.DataFrame:
    """Closed klines to the normalised OHLCV frame (frames.COLUMNS), one row each."""
    if not klines:
        return empty_frame(Dataset.OHLCV)
    subs = [subscriptions[k.market] for k in klines]
    frame = pd.DataFrame(
        {
            "timestamp": open_times_to_utc(pd.Series([k.open_time_ms for k in klines])),
            "symbol": [s.symbol for s in subs],
            "interval": [k.interval for k in klines],
            "open": [k.open for k in klines],
            "high": [k.high for k in klines],
            "low": [k.low for k in klines],
            "close": [k.close for k in klines],
            "volume": [k.volume for k in klines],
            "quote_volume": [k.quote_volume for k in klines],
            "quote_currency": [s.quote_currency for s in subs],
            "source_api": source_api,
        }
    )
    return conform(frame, Dataset.OHLCV)


def kline_message(
    sub: Subscription,
    interval: str,
    row: Mapping[str, Any],
    *,
    closed: bool,
    event_time_ms: int,
) -> str:
    """A combined-stream kline message in Binance's format (what the synthetic feed sends)."""
    open_ms = int(pd.Timestamp(row["timestamp"]).value // 1_000_000)
    step_ms = int(interval_length(interval).total_seconds() * 1000)
    k = {
        "t": open_ms,
        "T": open_ms + step_ms - 1,
        "s": sub.market,
        "i": interval,
        "o": repr(float(row["open"])),
        "c": repr(float(row["close"])),
        "h": repr(float(row["high"])),
        "l": repr(float(row["low"])),
        "v": repr(float(row["volume"])),
        "n": int(row.get("trades", 0) or 0),
        "x": closed,
        "q": repr(float(row["quote_volume"])),
    }
    data = {"e": "kline", "E": event_time_ms, "s": sub.market, "k": k}
    return json.dumps({"stream": sub.stream_name(interval), "data": data}, separators=(",", ":"))
