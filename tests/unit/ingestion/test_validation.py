"""Row validation: every rule rejects the row that breaks it with a readable reason, and keeps
the good rows of the same batch.

The good rows are real Binance BTC/USDT 1h candles (2017-08-17 04:00-07:00 UTC, from
shared/data/intraday/binance_ccxt_freqtrade/BTC_USDT-1h.json), written out here so the tests
run without the shared data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crypto_analytics.errors import BadPayload, ConfigError
from crypto_analytics.ingestion.frames import COLUMNS, Dataset
from crypto_analytics.ingestion.validation import validate
from crypto_analytics.intervals import is_aligned

NOW = datetime(2024, 1, 1, tzinfo=UTC)
REAL_CANDLES = [  # [open time ms, open, high, low, close, base volume]
    [1502942400000, 4261.48, 4313.62, 4261.32, 4308.83, 47.181009],
    [1502946000000, 4308.83, 4328.69, 4291.37, 4315.32, 23.234916],
    [1502949600000, 4330.29, 4345.45, 4309.37, 4324.35, 7.229691],
    [1502953200000, 4316.62, 4349.99, 4287.41, 4349.99, 4.443249],
]


def candles() -> pd.DataFrame:
    frame = pd.DataFrame(REAL_CANDLES, columns=["ms", "open", "high", "low", "close", "volume"])
    frame.insert(0, "timestamp", pd.to_datetime(frame.pop("ms"), unit="ms", utc=True))
    frame["symbol"] = "BTC"
    frame["interval"] = "1h"
    frame["quote_volume"] = frame["volume"] * frame["close"]
    frame["quote_currency"] = "USDT"
    frame["source_api"] = "binance"
    return frame[COLUMNS[Dataset.OHLCV]]


def with_bad_row(**changes: object) -> pd.DataFrame:
    """The real candles plus a fifth row: a copy of the first, an hour after the last, changed."""
    frame = candles()
    bad = frame.iloc[[0]].copy()
    bad["timestamp"] = pd.Timestamp("2017-08-17 08:00", tz="UTC")
    frame = pd.concat([frame, bad], ignore_index=True)
    for column, value in changes.items():
        text_column = column in ("symbol", "interval", "quote_currency", "source_api")
        if isinstance(value, str) and not text_column:  # a value of the wrong kind
            frame[column] = frame[column].astype(object)
        frame.loc[4, column] = value
    return frame


def reject_one(settings, dataset=Dataset.OHLCV, **changes: object) -> str:
    """Validate real rows plus one broken row; the good rows must all survive."""
    result = validate(with_bad_row(**changes), dataset, settings, now=NOW)
    assert len(result.valid) == 4, result.rejected
    assert len(result.rejected) == 1
    assert result.valid["close"].tolist() == [4308.83, 4315.32, 4324.35, 4349.99]
    return str(result.rejected["reason"].iloc[0])


def test_real_candles_pass_untouched(settings):
    result = validate(candles(), Dataset.OHLCV, settings, now=NOW)
    assert result.rejected.empty and result.counts == {}
    assert list(result.valid.columns) == COLUMNS[Dataset.OHLCV]
    assert result.valid["open"].tolist() == [4261.48, 4308.83, 4330.29, 4316.62]
    assert str(result.valid["symbol"].dtype) == "string"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"open": None}, "open is null"),
        ({"close": np.nan}, "close is null"),
        ({"symbol": None}, "symbol is null"),
        ({"timestamp": pd.NaT}, "timestamp is null"),
        ({"high": 9.0, "close": 10.0, "open": 8.5, "low": 8.0}, "high 9.0 below close 10.0"),
        (
            {"high": 9.0, "open": 9.5, "close": 10.0, "low": 8.0},
            "high 9.0 below open 9.5; high 9.0 below close 10.0",
        ),
        ({"low": 4300.0, "open": 4261.48, "close": 4308.83}, "low 4300.0 above open 4261.48"),
        (
            {"low": 4310.0, "high": 4320.0},
            "low 4310.0 above open 4261.48; low 4310.0 above close 4308.83",
        ),
        ({"open": 0.0}, "open 0.0 is not positive; low 4261.32 above open 0.0"),
        (
            {"close": -5.0, "low": -6.0},
            "low -6.0 is not positive; close -5.0 is not positive",  # in column order
        ),
        ({"volume": -1.0}, "volume -1.0 is negative"),
        ({"quote_volume": -0.5}, "quote_volume -0.5 is negative"),
        ({"symbol": "FOO"}, "unknown symbol 'FOO'"),
        ({"interval": "2h"}, "unknown interval '2h'"),
        (
            {"timestamp": pd.Timestamp("2017-08-17 08:30", tz="UTC")},
            "timestamp 2017-08-17T08:30:00+00:00 is not aligned to 1h candles",
        ),
        (
            {"timestamp": pd.Timestamp("2024-01-01 02:00", tz="UTC")},
            "timestamp 2024-01-01T02:00:00+00:00 is in the future "
            "(now 2024-01-01T00:00:00+00:00, one interval tolerated)",
        ),
        ({"open": "n/a"}, "open 'n/a' is not a number"),
        ({"timestamp": "yesterday-ish"}, "timestamp 'yesterday-ish' is not a timestamp"),
    ],
)
def test_each_rule_rejects_its_row_with_a_readable_reason(settings, changes, reason):
    assert reject_one(settings, **changes) == reason


def test_one_interval_of_clock_tolerance(settings):
    frame = with_bad_row(timestamp=pd.Timestamp("2024-01-01 01:00", tz="UTC"))
    assert validate(frame, Dataset.OHLCV, settings, now=NOW).rejected.empty


def test_alignment_agrees_with_intervals_is_aligned(settings):
    stamps = pd.to_datetime(
        [
            "2021-01-01 00:00:00",
            "2021-01-01 04:00:00",
            "2021-01-01 05:00:00",
            "2021-01-01 00:15:30",
        ],
        utc=True,
    )
    for interval in ("1m", "15m", "4h", "1d"):
        frame = pd.concat([candles().iloc[[0]]] * 4, ignore_index=True)
        frame["timestamp"], frame["interval"] = stamps, interval
        result = validate(frame, Dataset.OHLCV, settings, now=NOW)
        kept = set(result.valid["timestamp"])
        assert kept == {t for t in stamps if is_aligned(t.to_pydatetime(), interval)}


def test_identical_duplicates_keep_one_copy(settings):
    frame = pd.concat([candles(), candles().iloc[[1, 1]]], ignore_index=True)
    result = validate(frame, Dataset.OHLCV, settings, now=NOW)
    assert len(result.valid) == 4
    assert result.rejected["reason"].tolist() == ["duplicate within payload"] * 2
    assert result.counts == {"duplicate within payload": 2}


def test_conflicting_duplicates_reject_every_copy(settings):
    frame = pd.concat([candles(), candles().iloc[[2]]], ignore_index=True)
    frame.loc[4, "close"] = 4325.0
    result = validate(frame, Dataset.OHLCV, settings, now=NOW)
    assert result.valid["close"].tolist() == [4308.83, 4315.32, 4349.99]
    assert result.rejected["close"].tolist() == [4324.35, 4325.0]
    assert set(result.rejected["reason"]) == {
        "conflicting duplicates (2 rows share the key with different values)"
    }


def test_same_time_on_other_key_is_no_duplicate(settings):
    other_interval = candles().assign(interval="1m")
    other_source = candles().assign(source_api="kraken")
    frame = pd.concat([candles(), other_interval, other_source], ignore_index=True)
    assert len(validate(frame, Dataset.OHLCV, settings, now=NOW).valid) == 12


def test_rejected_rows_keep_what_was_received(settings):
    frame = with_bad_row(open="n/a", volume=-2)
    frame.index = [10, 11, 12, 13, 14]
    frame["extra_field"] = "kept"
    result = validate(frame, Dataset.OHLCV, settings, now=NOW)
    row = result.rejected.iloc[0]
    assert row["open"] == "n/a" and row["volume"] == -2 and row["extra_field"] == "kept"
    assert row["reason"] == "open 'n/a' is not a number; volume -2.0 is negative"
    assert result.counts == {"unreadable:open": 1, "non_negative:volume": 1}
    assert list(result.valid.columns) == COLUMNS[Dataset.OHLCV]


def test_missing_fields_fail_the_whole_batch(settings):
    frame = candles().drop(columns=["volume", "interval"])
    with pytest.raises(
        BadPayload, match=r"binance: ohlcv payload is missing fields: interval, volume"
    ):
        validate(frame, Dataset.OHLCV, settings, now=NOW)


def test_changed_field_types_fail_the_whole_batch(settings):
    renamed = candles().assign(close="see price field")
    with pytest.raises(BadPayload, match=r"unexpected type: close \(type str"):
        validate(renamed, Dataset.OHLCV, settings, now=NOW)
    epoch = candles().assign(timestamp=[r[0] for r in REAL_CANDLES])
    with pytest.raises(BadPayload, match=r"timestamp \(type int64, expected datetimes\)"):
        validate(epoch, Dataset.OHLCV, settings, now=NOW)


def test_iso_timestamps_of_mixed_precision_are_read(settings):
    frame = candles()
    frame["timestamp"] = [
        "2017-08-17T04:00:00Z",
        "2017-08-17 05:00",
        "2017-08-17T06:00:00.000+00:00",
        "2017-08-17T09:00:00+02:00",
    ]
    result = validate(frame, Dataset.OHLCV, settings, now=NOW)
    assert result.rejected.empty
    assert result.valid["timestamp"].tolist() == candles()["timestamp"].tolist()


def test_numbers_sent_as_strings_are_read(settings):
    frame = candles().astype({"open": str, "high": str})
    result = validate(frame, "ohlcv", settings, now=NOW)
    assert result.rejected.empty
    assert result.valid["high"].tolist() == [4313.62, 4328.69, 4345.45, 4349.99]


def test_naive_now_is_refused(settings):
    with pytest.raises(ConfigError, match="timezone-aware"):
        validate(candles(), Dataset.OHLCV, settings, now=datetime(2024, 1, 1))


def test_empty_frame_is_valid_and_empty(settings):
    result = validate(candles().iloc[0:0], Dataset.OHLCV, settings, now=NOW)
    assert result.valid.empty and result.rejected.empty
    assert list(result.valid.columns) == COLUMNS[Dataset.OHLCV]


# --- market data and order books ---------------------------------------------------------------


def market_rows() -> pd.DataFrame:
    """CoinGecko /coins/markets rows for BTC and ETH, 2023-01-02 (shared/data/api_samples/
    coingecko/gusgoros_API_DOCKER_PGADMIN/coins_markets.json)."""
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2023-01-02T17:08:13.102Z", "2023-01-02T17:08:14.619Z"]),
            "symbol": ["BTC", "ETH"],
            "price": [16730.75, 1218.19],
            "market_cap": [322053364166.0, 146770392298.0],
            "circulating_supply": [19250368.0, 120525693.143052],
            "total_volume": [12892500366.0, 3743925021.0],
            "quote_currency": "usd",
            "source_api": "coingecko",
        }
    )


def test_market_rules(settings):
    frame = pd.concat([market_rows()] * 4, ignore_index=True)
    frame["symbol"] = ["BTC", "ETH", "SOL", "ADA", "DOGE", "XRP", "BNB", "LINK"]
    frame.loc[2, "price"] = 0.0
    frame.loc[3, "market_cap"] = -1.0
    frame.loc[4, "circulating_supply"] = -3.0
    frame.loc[5, "total_volume"] = -4.0
    frame.loc[6, "market_cap"] = np.nan  # CoinGecko leaves early market caps empty: allowed
    frame.loc[7, "timestamp"] = pd.Timestamp("2024-01-01 00:06", tz="UTC")
    result = validate(frame, Dataset.MARKET, settings, now=NOW)
    assert result.valid["symbol"].tolist() == ["BTC", "ETH", "BNB"]
    assert result.rejected["reason"].tolist() == [
        "price 0.0 is not positive",
        "market_cap -1.0 is negative",
        "circulating_supply -3.0 is negative",
        "total_volume -4.0 is negative",
        "timestamp 2024-01-01T00:06:00+00:00 is in the future "
        "(now 2024-01-01T00:00:00+00:00, 0:05:00 tolerated)",
    ]


def book(**changes: object) -> dict[str, object]:
    """Top two levels of a real Binance BTCUSDT depth snapshot, Oct 2021 (shared/data/
    api_samples/binance/nautilus_trader/http_spot_market_depth.json)."""
    row: dict[str, object] = {
        "timestamp": pd.Timestamp("2021-10-22 23:12", tz="UTC"),
        "symbol": "BTC",
        "bids": [[60650.0, 0.00213], [60648.08, 0.06346]],
        "asks": [[60650.01, 0.61982], [60653.68, 0.00696]],
        "depth": 2,
        "best_bid": 60650.0,
        "best_ask": 60650.01,
        "spread": 0.01,
        "mid": 60650.005,
        "quote_currency": "USDT",
        "source_api": "binance",
    }
    row.update(changes)
    return row


def test_order_book_rules(settings):
    minute = pd.Timestamp("2021-10-22 23:12", tz="UTC")
    rows = [
        book(),
        book(timestamp=minute + pd.Timedelta(minutes=1), bids=json.dumps([[60640.0, 1.0]])),
        book(timestamp=minute + pd.Timedelta(minutes=2), best_bid=60651.0),
        book(timestamp=minute + pd.Timedelta(minutes=3), asks=[[0.0, 1.0]]),
        book(timestamp=minute + pd.Timedelta(minutes=4), bids=[[60640.0, -1.0]]),
        book(timestamp=minute + pd.Timedelta(minutes=5), bids="not a book"),
        book(timestamp=minute + pd.Timedelta(minutes=6), depth=2.5),
        book(timestamp=minute + pd.Timedelta(minutes=7), mid=-1.0),
    ]
    result = validate(pd.DataFrame(rows), Dataset.ORDERBOOK, settings, now=NOW)
    assert len(result.valid) == 2
    assert result.valid["bids"].tolist()[1] == [[60640.0, 1.0]]  # JSON text parsed to levels
    assert str(result.valid["depth"].dtype) == "Int64"
    assert result.rejected["reason"].tolist() == [
        "best_bid 60651.0 above best_ask 60650.01",
        "asks level price 0.0 is not positive",
        "bids level quantity -1.0 is negative",
        "bids 'not a book' is not a list of [price, quantity] levels",
        "depth 2.5 is not a whole number",
        "mid -1.0 is not positive",
    ]


# --- real data and scale -------------------------------------------------------------------------


def test_a_real_history_passes_whole(settings, shared_data: Path):
    rows = json.loads(
        (shared_data / "intraday/binance_ccxt_freqtrade/ETH_USDT-1h.json").read_text()
    )
    frame = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close", "volume"])
    frame.insert(0, "timestamp", pd.to_datetime(frame.pop("ms"), unit="ms", utc=True))
    frame = frame.assign(
        symbol="ETH",
        interval="1h",
        quote_volume=np.nan,
        quote_currency="USDT",
        source_api="binance",
    )
    result = validate(frame, Dataset.OHLCV, settings, now=NOW)
    assert len(result.valid) == 45_024 and result.rejected.empty


@pytest.mark.slow
def test_a_million_rows_with_scattered_faults(settings):
    n = 1_000_000
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="min", tz="UTC"),
            "symbol": "BTC",
            "interval": "1m",
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": 1.0,
            "quote_volume": close,
            "quote_currency": "USDT",
            "source_api": "binance",
        }
    )
    faults = rng.choice(n, 3_000, replace=False)
    frame.loc[faults[:1000], "high"] = 1.0
    frame.loc[faults[1000:2000], "symbol"] = "NOPE"
    frame.loc[faults[2000:], "volume"] = np.nan
    result = validate(frame, Dataset.OHLCV, settings, now=NOW)
    assert len(result.valid) == n - 3_000
    assert result.counts == {
        "known:symbol": 1000,
        "null:volume": 1000,
        "high_ge_open": 1000,
        "high_ge_close": 1000,
    }
    assert not result.valid["timestamp"].isin(frame.loc[faults, "timestamp"]).any()
