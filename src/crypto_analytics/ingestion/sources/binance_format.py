"""Binance's wire formats, parsed without any I/O: kline rows (REST and archive CSV) and depth.

Why one module for both sources: the REST `/api/v3/klines` rows and the data.binance.vision CSV
lines are the same 12 fields, so the exchange source and the archive source must agree to the
last digit; parsing them in one place guarantees it.

Kline fields: open time, open, high, low, close, base volume, close time, quote volume, trades,
taker buy base volume, taker buy quote volume, ignore. Prices arrive as decimal strings. Open
times are Unix milliseconds, except spot archive files from 2025-01-01, which are microseconds.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crypto_analytics.errors import BadPayload
from crypto_analytics.ingestion.frames import Dataset, conform, empty_frame

log = logging.getLogger(__name__)

KLINE_FIELDS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)

#: Open times at or above this are microseconds: 1e14 ms is the year 5138, 1e14 µs is 1973.
MICROSECONDS_THRESHOLD = 10**14


def open_times_to_utc(values: pd.Series) -> pd.Series:
    """Integer open times (ms or µs, decided per value by magnitude) to tz-aware UTC timestamps."""
    as_int = values.astype("int64")
    micros = np.where(as_int >= MICROSECONDS_THRESHOLD, as_int, as_int * 1000)
    return pd.Series(pd.to_datetime(micros, unit="us", utc=True), index=values.index)


def parse_klines(
    rows: Sequence[Sequence[Any]],
    *,
    symbol: str,
    interval: str,
    quote_currency: str,
    source_api: str,
    source: str = "binance",
) -> pd.DataFrame:
    """Binance kline rows (12-field arrays, prices as strings) to the normalised OHLCV frame.

    Raises BadPayload naming the first row whose shape or open time is wrong; unparsable prices
    become NaN (frames.conform) so validation can quarantine the row with a reason.
    """
    if not isinstance(rows, Sequence) or isinstance(rows, str | bytes):
        raise BadPayload(source, f"klines must be a JSON array of rows, got {type(rows).__name__}")
    if len(rows) == 0:
        return empty_frame(Dataset.OHLCV)
    for index, row in enumerate(rows):
        if not isinstance(row, Sequence) or isinstance(row, str | bytes):
            raise BadPayload(source, f"kline row {index} is not an array: {row!r:.120}")
        if len(row) < len(KLINE_FIELDS):
            raise BadPayload(
                source,
                f"kline row {index} has {len(row)} fields, expected {len(KLINE_FIELDS)}: "
                f"{list(row)!r:.200}",
            )
    table = pd.DataFrame(
        [list(row[: len(KLINE_FIELDS)]) for row in rows], columns=list(KLINE_FIELDS), dtype=object
    )
    open_time = pd.to_numeric(table["open_time"], errors="coerce")
    bad = open_time.isna() | (open_time != open_time.round())
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise BadPayload(
            source, f"kline row {first} has an invalid open time: {rows[first][0]!r:.60}"
        )
    frame = pd.DataFrame(
        {
            "timestamp": open_times_to_utc(open_time),
            "symbol": symbol,
            "interval": interval,
            "open": table["open"],
            "high": table["high"],
            "low": table["low"],
            "close": table["close"],
            "volume": table["volume"],
            "quote_volume": table["quote_volume"],
            "quote_currency": quote_currency,
            "source_api": source_api,
        }
    )
    return conform(frame, Dataset.OHLCV)


def read_kline_csv(data: bytes | str, *, source: str = "binance_archive") -> list[list[str]]:
    """The rows of a data.binance.vision kline CSV, with or without a header line.

    Why detect the header: Binance's own spot files have none, but many copies (and Binance's
    futures files) start with one; a header is a first line whose open time is not a number.
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(f.strip() for f in row)]
    if rows and not rows[0][0].strip().lstrip("-").isdigit():
        log.debug("%s: skipping CSV header %s", source, rows[0][:3])
        rows = rows[1:]
    return [[field.strip() for field in row] for row in rows]


def parse_depth(
    payload: Mapping[str, Any], *, source: str = "binance"
) -> tuple[list[list[float]], list[list[float]]]:
    """A raw `/api/v3/depth` body to (bids, asks) as [price, qty] floats, best level first.

    Binance already sends bids descending and asks ascending; we sort anyway so a reordered
    payload cannot silently produce a wrong best bid/ask.
    """
    if not isinstance(payload, Mapping):
        raise BadPayload(source, f"depth must be a JSON object, got {type(payload).__name__}")
    sides: dict[str, list[list[float]]] = {}
    for side in ("bids", "asks"):
        levels = payload.get(side)
        if not isinstance(levels, list):
            raise BadPayload(source, f"depth payload has no '{side}' array")
        parsed: list[list[float]] = []
        for index, level in enumerate(levels):
            try:
                price, qty = float(level[0]), float(level[1])
            except (TypeError, ValueError, IndexError, KeyError) as exc:
                raise BadPayload(
                    source, f"depth {side}[{index}] is not [price, qty]: {level!r}"
                ) from exc
            parsed.append([price, qty])
        sides[side] = parsed
    bids = sorted(sides["bids"], key=lambda level: -level[0])
    asks = sorted(sides["asks"], key=lambda level: level[0])
    return bids, asks
