"""parse_chart on Yahoo's recorded v8 chart bodies: exact timestamps and OHLCV, and bad bodies."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crypto_analytics.errors import BadPayload, HistoryLimitExceeded, SymbolUnavailable
from crypto_analytics.ingestion.frames import COLUMNS, Dataset
from crypto_analytics.ingestion.sources.yahoo import decode_chart, parse_chart

SAMPLES = Path("api_samples/yahoo/node-yahoo-finance2")
CHART = SAMPLES / "chart-BTC-USD-2020-01-01-to-2020-01-03.json"
HISTORICAL = SAMPLES / "historical-via-chart-BTC-USD-2020-01-01-to-2020-01-03.json"


def body_of(shared_data: Path, name: Path) -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads((shared_data / name).read_text())
    return recorded["response"]["bodyJson"]


@pytest.mark.parametrize("sample", [CHART, HISTORICAL], ids=["chart", "historical-via-chart"])
def test_parses_the_recorded_btc_daily_chart_exactly(shared_data: Path, sample: Path) -> None:
    frame = parse_chart(body_of(shared_data, sample), "BTC", "1d")

    assert list(frame.columns) == COLUMNS[Dataset.OHLCV]
    assert list(frame["timestamp"]) == [
        pd.Timestamp("2020-01-01T00:00:00Z"),  # 1577836800
        pd.Timestamp("2020-01-02T00:00:00Z"),  # 1577923200
        pd.Timestamp("2020-01-03T00:00:00Z"),  # 1578009600
    ]
    assert list(frame["open"]) == [7194.89208984375, 7202.55126953125, 6984.4287109375]
    assert list(frame["high"]) == [7254.33056640625, 7212.1552734375, 7413.71533203125]
    assert list(frame["low"]) == [7174.9443359375, 6935.27001953125, 6914.99609375]
    assert list(frame["close"]) == [7200.17431640625, 6985.47021484375, 7344.88427734375]
    assert list(frame["volume"]) == [18565664997.0, 20802083465.0, 28111481032.0]
    assert frame["quote_volume"].isna().all()
    assert set(frame["symbol"]) == {"BTC"}
    assert set(frame["interval"]) == {"1d"}
    assert set(frame["quote_currency"]) == {"USD"}
    assert set(frame["source_api"]) == {"yahoo"}


def test_null_values_stay_nan_for_validation_to_quarantine(shared_data: Path) -> None:
    body = body_of(shared_data, CHART)
    quote = body["chart"]["result"][0]["indicators"]["quote"][0]
    quote["close"][1] = None
    quote["volume"][2] = None

    frame = parse_chart(body, "BTC", "1d")

    assert len(frame) == 3
    assert math.isnan(frame["close"][1]) and frame["close"][0] == 7200.17431640625
    assert math.isnan(frame["volume"][2]) and frame["volume"][1] == 20802083465.0


def test_chart_error_becomes_symbol_unavailable_with_yahoo_description() -> None:
    body = {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }
    with pytest.raises(SymbolUnavailable, match="No data found, symbol may be delisted"):
        parse_chart(body, "BUSD", "1d")


def test_chart_error_about_the_intraday_window_is_a_history_limit() -> None:
    body = {
        "chart": {
            "result": None,
            "error": {
                "code": "Unprocessable Entity",
                "description": "1h data not available for startTime=1577836800 and "
                "endTime=1578009600. The requested range must be within the last 730 days.",
            },
        }
    }
    with pytest.raises(HistoryLimitExceeded, match="within the last 730 days"):
        parse_chart(body, "BTC", "1h")


def test_window_without_candles_is_an_empty_frame_not_an_error(shared_data: Path) -> None:
    body = body_of(shared_data, CHART)
    result = body["chart"]["result"][0]
    del result["timestamp"]
    result["indicators"]["quote"] = [{}]

    frame = parse_chart(body, "BTC", "1d")

    assert frame.empty and list(frame.columns) == COLUMNS[Dataset.OHLCV]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b.pop("chart"), "no 'chart' object"),
        (lambda b: b["chart"].update(result=[]), "chart.result is missing"),
        (lambda b: b["chart"]["result"][0].pop("indicators"), "indicators.quote"),
        (
            lambda b: b["chart"]["result"][0]["indicators"]["quote"][0].pop("high"),
            r"quote\[0\]\.high",
        ),
        (
            lambda b: b["chart"]["result"][0]["indicators"]["quote"][0]["low"].pop(),
            "low has 2 values for 3 timestamps",
        ),
        (lambda b: b["chart"]["result"][0].update(timestamp=["x", 1, 2]), "timestamp"),
        (lambda b: b["chart"]["result"][0]["meta"].update(dataGranularity="1h"), "Yahoo sent 1h"),
    ],
    ids=["no-chart", "no-result", "no-indicators", "no-high", "short-low", "bad-ts", "granularity"],
)
def test_missing_or_inconsistent_fields_are_bad_payloads(
    shared_data: Path, damage: Any, message: str
) -> None:
    body = copy.deepcopy(body_of(shared_data, CHART))
    damage(body)
    with pytest.raises(BadPayload, match=message):
        parse_chart(body, "BTC", "1d")


def test_truncated_body_is_a_bad_payload(shared_data: Path) -> None:
    raw = json.dumps(body_of(shared_data, CHART)).encode()
    with pytest.raises(BadPayload, match=r"malformed chart JSON \(700 bytes\)"):
        decode_chart(raw[:700], "BTC")
