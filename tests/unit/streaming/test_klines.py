"""Kline messages: the real recorded Binance captures, closed vs open candles, malformed frames,
control events, and the stream frame equal to the REST parser's frame for the same candles."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from crypto_analytics.ingestion.sources.binance_format import parse_klines
from crypto_analytics.streaming.klines import (
    Ignored,
    Kline,
    MalformedMessage,
    ServerShutdown,
    kline_message,
    klines_frame,
    parse_message,
)
from crypto_analytics.streaming.subscriptions import binance_subscriptions

CAPTURE = Path("api_samples/binance/cryptofeed_capture/BINANCE.ws.1.0")
NAUTILUS = Path("api_samples/binance/nautilus_trader")


def capture_messages(shared_data: Path) -> list[str]:
    """The raw frames of the real capture: lines `<receive ts>: <json>` after the URL line."""
    lines = (shared_data / CAPTURE).read_text().splitlines()[1:]
    return [line.split(": ", 1)[1] for line in lines if ": " in line]


def ws_from_rest(row: list, market: str = "BTCUSDT", closed: bool = True) -> str:
    """A recorded REST kline row as the stream sends the same candle (same decimal strings)."""
    k = {
        "t": row[0], "T": row[6], "s": market, "i": "1m", "f": 1, "L": 2,
        "o": row[1], "c": row[4], "h": row[2], "l": row[3], "v": row[5], "n": row[8],
        "x": closed, "q": row[7], "V": row[9], "Q": row[10], "B": row[11],
    }  # fmt: skip
    data = {"e": "kline", "E": row[6] + 1, "s": market, "k": k}
    return json.dumps({"stream": f"{market.lower()}@kline_1m", "data": data})


@pytest.mark.shared_data
def test_every_frame_of_the_real_capture_is_classified(shared_data):
    messages = capture_messages(shared_data)
    assert len(messages) == 265
    parsed = [parse_message(m) for m in messages]
    klines = [p for p in parsed if isinstance(p, Kline)]
    ignored = [p for p in parsed if isinstance(p, Ignored)]
    assert len(klines) == 2 and len(ignored) == 263
    kinds = {i.what for i in ignored}
    # depth and trade events carry `e`; bookTicker events have none and are named by stream
    assert kinds == {
        "depthUpdate",
        "aggTrade",
        "nknusdt@bookTicker",
        "lrcbtc@bookTicker",
        "blzeth@bookTicker",
    }
    nkn = klines[0]
    assert (nkn.market, nkn.interval, nkn.open_time_ms, nkn.close_time_ms) == (
        "NKNUSDT",
        "1m",
        1633998480000,
        1633998539999,
    )
    assert (nkn.open, nkn.close, nkn.quote_volume, nkn.trades) == (
        "0.35270000",
        "0.35280000",
        "9116.04600000",
        30,
    )
    assert nkn.closed is False  # both recorded klines are candles still forming


@pytest.mark.shared_data
def test_documented_open_and_closed_kline_events(shared_data):
    closed = parse_message(
        (shared_data / NAUTILUS / "docexample_futures_kline_stream_closed.json").read_text()
    )
    still_open = parse_message(
        (shared_data / NAUTILUS / "docexample_futures_kline_stream_open.json").read_text()
    )
    assert isinstance(closed, Kline) and closed.closed is True
    assert isinstance(still_open, Kline) and still_open.closed is False
    assert closed.key == still_open.key == ("BTCUSDT", 1638747660000)
    assert not closed.same_values(still_open)  # the open one's low differs


@pytest.mark.shared_data
def test_stream_frame_equals_the_rest_parser_on_the_same_candles(shared_data, settings):
    rows = json.loads((shared_data / NAUTILUS / "http_spot_market_klines.json").read_text())
    subs = {s.market: s for s in binance_subscriptions(settings, ["BTC"])}
    klines = [parse_message(ws_from_rest(row)) for row in rows]
    stream = klines_frame(klines, subs, "binance")
    rest = parse_klines(
        rows, symbol="BTC", interval="1m", quote_currency="USDT", source_api="binance"
    )
    assert_frame_equal(stream, rest)
    assert stream["timestamp"].iloc[0] == pd.Timestamp("2021-10-22 23:03", tz="UTC")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"stream": "x@kline_1m", "data": {"e": "kline", "E": 1}}', "without a `k` object"),
        (
            '{"data": {"e": "kline", "k": {"t": "1", "T": 2, "s": "BTCUSDT", "i": "1m", "o": "1", '
            '"c": "1", "h": "1", "l": "1", "v": "1", "x": true, "q": "1"}}}',
            "k.t",
        ),
        (
            '{"data": {"e": "kline", "k": {"t": 1, "T": 2, "s": "BTCUSDT", "i": "1m", "o": "1", '
            '"c": "1", "h": "1", "l": "1", "v": "1", "x": "yes", "q": "1"}}}',
            "k.x",
        ),
        (
            '{"data": {"e": "kline", "k": {"t": 1, "T": 2, "s": "BTCUSDT", "i": "1m", "o": "1", '
            '"h": "1", "l": "1", "v": "1", "x": true, "q": "1"}}}',
            "k.c",
        ),
    ],
)
def test_malformed_frames_name_the_problem(raw, words):
    with pytest.raises(MalformedMessage, match=words.replace("`", ".")):
        parse_message(raw)


def test_control_events():
    assert parse_message('{"result": null, "id": 1}') == Ignored("subscription answer")
    assert parse_message(
        '{"event": {"e": "serverShutdown", "E": 1770123456789}}'
    ) == ServerShutdown(1770123456789)
    assert parse_message('{"e": "serverShutdown", "E": 5}') == ServerShutdown(5)
    assert parse_message(b'{"stream": "btcusdt@trade", "data": {"e": "trade"}}') == Ignored("trade")


def test_synthetic_message_round_trips_through_the_parser(settings):
    sub = binance_subscriptions(settings, ["ETH"])[0]
    row = {
        "timestamp": pd.Timestamp("2024-05-01 12:34", tz="UTC"),
        "open": 3000.5,
        "high": 3010.25,
        "low": 2999.0,
        "close": 3005.125,
        "volume": 12.5,
        "quote_volume": 37564.0625,
    }
    kline = parse_message(kline_message(sub, "1m", row, closed=True, event_time_ms=7))
    assert isinstance(kline, Kline)
    assert kline.key == ("ETHUSDT", 1714566840000)
    assert kline.close_time_ms == 1714566899999
    frame = klines_frame([kline], {sub.market: sub}, "binance")
    assert frame.loc[0, ["open", "high", "low", "close", "volume", "quote_volume"]].tolist() == [
        3000.5,
        3010.25,
        2999.0,
        3005.125,
        12.5,
        37564.0625,
    ]
