"""Binance wire-format parsers on real recorded payloads (no network, no ccxt)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from exchange_fakes import CRYPTOFEED_DEPTH_FILE, DEPTH_FILE, KLINES_FILE

from crypto_analytics.errors import BadPayload, ConfigError
from crypto_analytics.ingestion.frames import COLUMNS, Dataset
from crypto_analytics.ingestion.sources.binance_format import parse_depth, parse_klines
from crypto_analytics.ingestion.sources.exchange import ccxt_candles_frame, summarise_order_book

UTC = "UTC"


def _klines(shared_data: Path) -> list[list[object]]:
    return json.loads((shared_data / KLINES_FILE).read_text())


def test_klines_parser_gives_exact_values_of_real_rows(shared_data: Path) -> None:
    frame = parse_klines(
        _klines(shared_data),
        symbol="BTC",
        interval="1m",
        quote_currency="USDT",
        source_api="binance",
    )
    assert list(frame.columns) == COLUMNS[Dataset.OHLCV]
    assert len(frame) == 10
    first, last = frame.iloc[0], frame.iloc[-1]
    # row 0: [1634943780000, "60685.22000000", "60729.84000000", "60670.90000000",
    #         "60719.27000000", "21.63272000", 1634943839999, "1313200.01340410", ...]
    assert first["timestamp"] == pd.Timestamp("2021-10-22 23:03:00", tz=UTC)
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        60685.22,
        60729.84,
        60670.90,
        60719.27,
    )
    assert first["volume"] == 21.63272
    assert first["quote_volume"] == 1313200.0134041
    assert (first["symbol"], first["interval"], first["quote_currency"], first["source_api"]) == (
        "BTC",
        "1m",
        "USDT",
        "binance",
    )
    # row 9: the last minute, a single-price candle with 7 trades
    assert last["timestamp"] == pd.Timestamp("2021-10-22 23:12:00", tz=UTC)
    assert {last["open"], last["high"], last["low"], last["close"]} == {60739.85}
    assert last["volume"] == 0.04734
    assert last["quote_volume"] == 2875.424499
    # row 4 (23:07): its close (60759.65) is not the next open (60762.99): no smoothing
    assert frame.iloc[4]["close"] == 60759.65 and frame.iloc[5]["open"] == 60762.99
    assert frame["timestamp"].diff().dropna().eq(pd.Timedelta(minutes=1)).all()
    assert str(frame["timestamp"].dt.tz) == "UTC"


def test_klines_parser_reads_microsecond_open_times_like_milliseconds(shared_data: Path) -> None:
    rows = _klines(shared_data)
    micro = [[row[0] * 1000, *row[1:]] for row in rows]  # type: ignore[operator]
    common = {"symbol": "BTC", "interval": "1m", "quote_currency": "USDT", "source_api": "binance"}
    pd.testing.assert_frame_equal(parse_klines(micro, **common), parse_klines(rows, **common))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"code": -1121}, "JSON array"),
        ([[1634943780000, "1", "2"]], "row 0 has 3 fields, expected 12"),
        ([["soon", *["1"] * 11]], "row 0 has an invalid open time"),
        (["not a row"], "row 0 is not an array"),
    ],
)
def test_klines_parser_names_what_is_wrong(rows: object, message: str) -> None:
    with pytest.raises(BadPayload, match=message):
        parse_klines(rows, symbol="BTC", interval="1m", quote_currency="USDT", source_api="b")  # type: ignore[arg-type]


def test_empty_klines_give_an_empty_typed_frame() -> None:
    frame = parse_klines([], symbol="BTC", interval="1m", quote_currency="USDT", source_api="b")
    assert frame.empty and list(frame.columns) == COLUMNS[Dataset.OHLCV]


def test_unified_ccxt_candles_have_nan_quote_volume() -> None:
    frame = ccxt_candles_frame(
        [[1634943780000, 60685.22, 60729.84, 60670.9, 60719.27, 21.63272]],
        symbol="BTC",
        interval="1m",
        quote_currency="USD",
        source_api="kraken",
    )
    assert frame.iloc[0]["timestamp"] == pd.Timestamp("2021-10-22 23:03:00", tz=UTC)
    assert frame.iloc[0]["close"] == 60719.27
    assert math.isnan(frame.iloc[0]["quote_volume"])
    with pytest.raises(BadPayload, match="candle 0 is incomplete"):
        ccxt_candles_frame(
            [[None] * 6], symbol="B", interval="1m", quote_currency="U", source_api="k"
        )


def test_depth_snapshot_from_nautilus_recording(shared_data: Path) -> None:
    bids, asks = parse_depth(json.loads((shared_data / DEPTH_FILE).read_text()))
    assert len(bids) == 10 and len(asks) == 10
    assert bids[0] == [60650.0, 0.00213] and bids[-1] == [60639.93, 0.07282]
    assert asks[0] == [60650.01, 0.61982] and asks[-1] == [60659.94, 0.9617]
    frame = summarise_order_book(
        bids,
        asks,
        depth=5,
        timestamp=pd.Timestamp("2021-10-22 23:12:00", tz=UTC),
        symbol="BTC",
        quote_currency="USDT",
        source_api="binance",
    )
    assert list(frame.columns) == COLUMNS[Dataset.ORDERBOOK]
    row = frame.iloc[0]
    assert row["bids"] == [
        [60650.0, 0.00213],
        [60648.08, 0.06346],
        [60648.01, 0.0643],
        [60648.0, 0.09332],
        [60647.53, 0.19622],
    ]
    assert row["asks"][-1] == [60657.87, 0.02]
    assert (row["best_bid"], row["best_ask"], row["depth"]) == (60650.0, 60650.01, 5)
    assert row["spread"] == pytest.approx(0.01, abs=1e-9)
    assert row["mid"] == pytest.approx(60650.005, abs=1e-9)
    json.dumps(row["bids"])  # JSON-able as stored in bronze


def _cryptofeed_snapshots(shared_data: Path) -> dict[str, tuple[float, dict[str, object]]]:
    """`<url> -> <receive ts>: <raw body>` lines keyed by the symbol in the URL."""
    out: dict[str, tuple[float, dict[str, object]]] = {}
    for line in (shared_data / CRYPTOFEED_DEPTH_FILE).read_text().splitlines():
        if not line.strip():
            continue
        url, rest = line.split(" -> ", 1)
        received, body = rest.split(": ", 1)
        symbol = url.split("symbol=")[1].split("&")[0]
        out[symbol] = (float(received), json.loads(body))
    return out


@pytest.mark.parametrize(
    ("symbol", "best_bid", "best_ask", "bid_20", "ask_20", "levels"),
    [
        ("NKNUSDT", 0.3521, 0.3525, [0.3501, 48592.0], [0.3546, 8589.0], (609, 1000)),
        ("BLZETH", 0.00006547, 0.00006555, [0.00006437, 1137.0], [0.00006791, 6151.0], (174, 1000)),
        ("LRCBTC", 0.00000637, 0.00000638, [0.00000616, 1814.0], [0.00000659, 45.0], (176, 1000)),
        ("RUNEEUR", 6.251, 6.269, [6.2, 5.7], [6.402, 244.8], (221, 468)),
    ],
)
def test_depth_snapshots_from_cryptofeed_capture(
    shared_data: Path,
    symbol: str,
    best_bid: float,
    best_ask: float,
    bid_20: list[float],
    ask_20: list[float],
    levels: tuple[int, int],
) -> None:
    received, payload = _cryptofeed_snapshots(shared_data)[symbol]
    bids, asks = parse_depth(payload)
    assert (len(bids), len(asks)) == levels
    timestamp = pd.Timestamp(received, unit="s", tz=UTC).floor("ms")
    top20 = summarise_order_book(
        bids,
        asks,
        depth=20,
        timestamp=timestamp,
        symbol=symbol,
        quote_currency="X",
        source_api="binance",
    ).iloc[0]
    assert (top20["best_bid"], top20["best_ask"]) == (best_bid, best_ask)
    assert top20["bids"][19] == bid_20 and top20["asks"][19] == ask_20
    assert len(top20["bids"]) == len(top20["asks"]) == 20
    assert top20["spread"] == pytest.approx(best_ask - best_bid, rel=1e-9)
    assert top20["mid"] == pytest.approx((best_ask + best_bid) / 2, rel=1e-12)
    # asking deeper than the book keeps every level there is, best first, and no more
    everything = summarise_order_book(
        bids,
        asks,
        depth=5000,
        timestamp=timestamp,
        symbol=symbol,
        quote_currency="X",
        source_api="b",
    ).iloc[0]
    assert (len(everything["bids"]), len(everything["asks"])) == levels
    assert everything["bids"][0][0] == best_bid and everything["asks"][0][0] == best_ask


def test_nkn_snapshot_timestamp_is_the_receive_time(shared_data: Path) -> None:
    received, _ = _cryptofeed_snapshots(shared_data)["NKNUSDT"]
    assert pd.Timestamp(received, unit="s", tz=UTC).floor("ms") == pd.Timestamp(
        "2021-10-12 00:28:32.320", tz=UTC
    )


def test_depth_parser_sorts_levels_and_rejects_bad_ones() -> None:
    bids, asks = parse_depth(
        {"bids": [["1.0", "2"], ["3.0", "4"]], "asks": [["9", "1"], ["5", "1"]]}
    )
    assert bids == [[3.0, 4.0], [1.0, 2.0]] and asks == [[5.0, 1.0], [9.0, 1.0]]
    with pytest.raises(BadPayload, match=r"asks\[0\] is not \[price, qty\]"):
        parse_depth({"bids": [], "asks": [["x"]]})
    with pytest.raises(BadPayload, match="no 'bids' array"):
        parse_depth({"asks": []})


def test_empty_side_gives_nan_prices_not_a_crash() -> None:
    row = summarise_order_book(
        [],
        [[2.0, 1.0]],
        depth=5,
        timestamp=pd.Timestamp(0, tz=UTC),
        symbol="X",
        quote_currency="U",
        source_api="b",
    ).iloc[0]
    assert math.isnan(row["best_bid"]) and row["best_ask"] == 2.0 and math.isnan(row["mid"])
    with pytest.raises(ConfigError, match="depth must be a positive integer"):
        summarise_order_book(
            [],
            [],
            depth=0,
            timestamp=pd.Timestamp(0, tz=UTC),
            symbol="X",
            quote_currency="U",
            source_api="b",
        )
