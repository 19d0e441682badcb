"""CoinGecko parsers on recorded /coins/markets and market_chart bodies: exact values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crypto_analytics.config import Settings
from crypto_analytics.errors import BadPayload
from crypto_analytics.ingestion.frames import COLUMNS, Dataset
from crypto_analytics.ingestion.sources.coingecko import parse_coins_markets, parse_market_chart

SAMPLES = Path("api_samples/coingecko")


def load(shared_data: Path, name: str) -> Any:
    return json.loads((shared_data / SAMPLES / name).read_text())


@pytest.fixture
def universe_ids(settings: Settings) -> dict[str, str]:
    return {t.coingecko: t.symbol for t in settings.tokens if t.coingecko}


def row(frame: pd.DataFrame, symbol: str) -> pd.Series:
    (index,) = frame.index[frame["symbol"] == symbol]
    return frame.loc[index]


def test_markets_2025_keeps_only_universe_coins_with_exact_values(
    shared_data: Path, universe_ids: dict[str, str]
) -> None:
    frame = parse_coins_markets(
        load(shared_data, "RozanovIgor_monkey/coins_markets.json"), universe_ids, "USD"
    )

    assert list(frame.columns) == COLUMNS[Dataset.MARKET]
    # 30 coins in the file; tron, staked-ether, pi-network, wrapped-bitcoin, hedera, leo, wsteth,
    # stellar, usds, litecoin, toncoin, sui, mantra, bitcoin-cash, weth, usde, hyperliquid are not ours.
    assert sorted(frame["symbol"]) == sorted(
        [
            "BTC",
            "ETH",
            "XRP",
            "USDT",
            "BNB",
            "SOL",
            "USDC",
            "ADA",
            "DOGE",
            "LINK",
            "AVAX",
            "SHIB",
            "DOT",
        ]
    )
    btc = row(frame, "BTC")
    assert btc["timestamp"] == pd.Timestamp("2025-03-04T14:45:50.155Z")
    assert btc["price"] == 79847.0
    assert btc["market_cap"] == 1592704518472.0
    assert btc["circulating_supply"] == 19832115.0
    assert btc["total_volume"] == 70779623474.0
    eth = row(frame, "ETH")
    assert eth["timestamp"] == pd.Timestamp("2025-03-04T14:45:46.412Z")
    assert eth["price"] == 2004.13
    assert eth["market_cap"] == 244214437500.0
    assert eth["circulating_supply"] == 120590104.1967597
    assert eth["total_volume"] == 35043785861.0
    assert set(frame["quote_currency"]) == {"USD"} and set(frame["source_api"]) == {"coingecko"}


def test_markets_2023_exact_values(shared_data: Path, universe_ids: dict[str, str]) -> None:
    frame = parse_coins_markets(
        load(shared_data, "gusgoros_API_DOCKER_PGADMIN/coins_markets.json"), universe_ids, "USD"
    )

    assert list(frame["symbol"]) == ["BTC", "ETH", "USDT", "USDC", "BNB"]
    btc = row(frame, "BTC")
    assert btc["timestamp"] == pd.Timestamp("2023-01-02T17:08:13.102Z")
    assert btc["price"] == 16730.75
    assert btc["market_cap"] == 322053364166.0
    assert btc["circulating_supply"] == 19250368.0
    usdt = row(frame, "USDT")
    assert usdt["price"] == 1.001
    assert usdt["timestamp"] == pd.Timestamp("2023-01-02T17:05:28.879Z")


def test_markets_with_no_universe_coin_is_empty(shared_data: Path) -> None:
    frame = parse_coins_markets(
        load(shared_data, "gusgoros_API_DOCKER_PGADMIN/coins_markets.json"),
        {"floki": "FLOKI"},
        "USD",
    )
    assert frame.empty and list(frame.columns) == COLUMNS[Dataset.MARKET]


def test_markets_nulls_and_mixed_time_precision(shared_data: Path) -> None:
    body = load(shared_data, "gusgoros_API_DOCKER_PGADMIN/coins_markets.json")
    body[0]["circulating_supply"] = None
    body[1]["last_updated"] = "2023-01-02T17:08:14Z"  # no milliseconds, unlike its neighbours

    frame = parse_coins_markets(body, {"bitcoin": "BTC", "ethereum": "ETH"}, "USD")

    assert math.isnan(row(frame, "BTC")["circulating_supply"])
    assert row(frame, "ETH")["timestamp"] == pd.Timestamp("2023-01-02T17:08:14Z")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": {"error_code": 429}}, "not a list"),
        ([{"symbol": "btc"}], "entry 0 has no 'id'"),
        ([{"id": "bitcoin", "current_price": 1.0}], "bitcoin lacks market_cap"),
    ],
)
def test_markets_bad_bodies(body: Any, message: str) -> None:
    with pytest.raises(BadPayload, match=message):
        parse_coins_markets(body, {"bitcoin": "BTC"}, "USD")


def test_market_chart_720_hourly_points_exact_ends(shared_data: Path) -> None:
    frame = parse_market_chart(
        load(shared_data, "bonifazdaniel_Python-CRYPTO-project/bitcoin_data.json"), "BTC", "USD"
    )

    assert len(frame) == 720
    assert list(frame.columns) == COLUMNS[Dataset.MARKET]
    first, last = frame.iloc[0], frame.iloc[-1]
    assert first["timestamp"] == pd.Timestamp(1730668855751, unit="ms", tz="UTC")
    assert first["price"] == 69102.91649492079
    assert first["market_cap"] == 1365565416882.7751
    assert first["total_volume"] == 34702339791.069855
    assert last["timestamp"] == pd.Timestamp(1733259468000, unit="ms", tz="UTC")
    assert last["price"] == 95665.32463266946
    assert last["market_cap"] == 1893364141602.6736
    assert last["total_volume"] == 89725150065.79555
    assert frame["circulating_supply"].isna().all()
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique


def test_market_chart_series_missing_a_timestamp_keep_nan_not_filled() -> None:
    body = {
        "prices": [[1000, 10.0], [2000, 11.0]],
        "market_caps": [[1000, 100.0]],
        "total_volumes": [[2000, 5.0], [2000, 5.0]],  # an exact repeat is kept once
    }
    frame = parse_market_chart(body, "BTC", "USD")

    assert list(frame["price"]) == [10.0, 11.0]
    assert frame["market_cap"][0] == 100.0 and math.isnan(frame["market_cap"][1])
    assert math.isnan(frame["total_volume"][0]) and frame["total_volume"][1] == 5.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a JSON object"),
        ({"prices": [], "market_caps": []}, "no 'total_volumes' list"),
        ({"prices": [[1, 2, 3]], "market_caps": [], "total_volumes": []}, r"is not \[ms, value\]"),
        (
            {"prices": [[1, 2.0], [1, 3.0]], "market_caps": [], "total_volumes": []},
            "two values at 1 ms",
        ),
    ],
)
def test_market_chart_bad_bodies(body: Any, message: str) -> None:
    with pytest.raises(BadPayload, match=message):
        parse_market_chart(body, "BTC", "USD")
