"""Each dataset is defined once (frames.SPECS) and every source's values go through one coercion
policy: numeric strings are numbers for every source, a retyped field is a BadPayload, and a
single unreadable value is quarantined saying what arrived, even after a trip through the lake."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crypto_analytics.errors import BadPayload
from crypto_analytics.ingestion import lake
from crypto_analytics.ingestion.frames import (
    COLUMNS,
    LINEAGE_COLUMNS,
    SPECS,
    UNREADABLE_COLUMN,
    Dataset,
    Kind,
    conform,
)
from crypto_analytics.ingestion.sources.base import FetchResult, RawPayload
from crypto_analytics.ingestion.sources.binance_format import parse_klines
from crypto_analytics.ingestion.sources.coingecko import parse_coins_markets, parse_market_chart
from crypto_analytics.ingestion.sources.yahoo import parse_chart
from crypto_analytics.ingestion.validation import validate

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2024, 6, 1, tzinfo=UTC)
IDS = {"bitcoin": "BTC", "ethereum": "ETH"}


def _coin(coin_id: str, price: object, **extra: object) -> dict:
    return {
        "id": coin_id,
        "current_price": price,
        "market_cap": extra.get("market_cap", "1300000000000"),
        "circulating_supply": 19_700_000,
        "total_volume": "25000000000.5",
        "last_updated": "2024-05-31T23:59:00.123Z",
    }


def test_coingecko_numbers_sent_as_strings_load_like_binance_strings(settings):
    frame = parse_coins_markets([_coin("bitcoin", "67000.5"), _coin("ethereum", 3500)], IDS, "USD")
    result = validate(frame, Dataset.MARKET, settings, now=NOW)
    assert result.rejected.empty
    assert result.valid.set_index("symbol")["price"].to_dict() == {"BTC": 67000.5, "ETH": 3500.0}
    assert result.valid["market_cap"].tolist() == [1.3e12, 1.3e12]

    klines = parse_klines(
        [[1717113600000, "67000.5", "68000", "66000", "67500", "10", 0, "675000", 0, 0, 0, 0]],
        symbol="BTC",
        interval="1d",
        quote_currency="USDT",
        source_api="binance",
    )
    assert klines["open"].tolist() == [67000.5]


def test_market_chart_points_sent_as_strings_are_numbers():
    body = {
        "prices": [[1717113600000, "67000.5"]],
        "market_caps": [[1717113600000, 1.3e12]],
        "total_volumes": [[1717113600000, "2.5e10"]],
    }
    frame = parse_market_chart(body, "BTC", "USD")
    assert (frame["price"][0], frame["total_volume"][0]) == (67000.5, 2.5e10)


@pytest.mark.parametrize(
    "retype",
    [
        lambda: parse_coins_markets(
            [_coin("bitcoin", {"usd": 1}), _coin("ethereum", {"usd": 2})], IDS, "USD"
        ),
        lambda: parse_coins_markets([_coin("bitcoin", True), _coin("ethereum", False)], IDS, "USD"),
        lambda: parse_klines(
            [[1717113600000, "n/a", "n/a", "n/a", "n/a", "10", 0, "1", 0, 0, 0, 0]],
            symbol="BTC",
            interval="1d",
            quote_currency="USDT",
            source_api="binance",
        ),
        lambda: parse_chart(
            {
                "chart": {
                    "result": [
                        {
                            "meta": {"currency": "USD", "dataGranularity": "1d"},
                            "timestamp": [1717113600],
                            "indicators": {
                                "quote": [
                                    {f: ["?"] for f in ("open", "high", "low", "close", "volume")}
                                ]
                            },
                        }
                    ]
                }
            },
            "BTC",
            "1d",
        ),
    ],
    ids=["coingecko-object", "coingecko-bool", "binance-text", "yahoo-text"],
)
def test_a_retyped_field_is_a_bad_payload_for_every_source(retype):
    with pytest.raises(BadPayload, match="fields of an unexpected type"):
        retype()


def test_one_unreadable_value_is_quarantined_saying_what_arrived_even_through_the_lake(settings):
    frame = parse_coins_markets([_coin("bitcoin", "n/a"), _coin("ethereum", "3500")], IDS, "USD")
    assert frame[UNREADABLE_COLUMN].tolist() == [json.dumps({"price": "'n/a'"}), None]

    batch = lake.write_batch(
        FetchResult("coingecko", Dataset.MARKET, frame, [RawPayload(b"[]", "test")]),
        uuid.uuid4(),
        settings,
        request_meta={},
    )
    _, from_lake = lake.read_batch(lake.manifest_path(batch, settings))
    result = validate(from_lake, Dataset.MARKET, settings, now=NOW)

    assert result.valid["symbol"].tolist() == ["ETH"]
    assert result.rejected["reason"].tolist() == ["price 'n/a' is not a number"]
    assert UNREADABLE_COLUMN not in result.rejected.columns
    assert UNREADABLE_COLUMN not in result.valid.columns


def test_conform_gives_every_kind_its_dtype():
    frame = conform(
        pd.DataFrame(
            {
                "timestamp": ["2024-01-01T00:00:00Z"],
                "symbol": ["BTC"],
                "bids": ['[["1.5", "2"]]'],
                "asks": [[[1.6, 3]]],
                "depth": ["20"],
                "best_bid": ["1.5"],
                "best_ask": [1.6],
                "spread": [0.1],
                "mid": [1.55],
                "quote_currency": ["USDT"],
                "source_api": ["binance"],
            }
        ),
        Dataset.ORDERBOOK,
    )
    assert str(frame["depth"].dtype) == "Int64" and frame["depth"][0] == 20
    assert frame["bids"][0] == [[1.5, 2.0]]
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)


def test_dbt_source_declarations_list_exactly_the_dataset_columns():
    """_bronze__sources.yml documents each bronze table; it must not drift from frames.SPECS."""
    declared = yaml.safe_load(
        (ROOT / "dbt/models/silver/staging/_bronze__sources.yml").read_text()
    )["sources"][0]["tables"]
    by_name = {table["name"]: [c["name"] for c in table["columns"]] for table in declared}
    for spec in SPECS.values():
        table = spec.table.split(".")[1]
        assert by_name[table] == [*spec.names, *LINEAGE_COLUMNS], table


def test_derived_views_agree_with_the_specs():
    for dataset, spec in SPECS.items():
        assert COLUMNS[dataset] == spec.names
        assert set(spec.natural_key) <= set(spec.names)
        assert spec.natural_key[-1] == "timestamp"
    assert SPECS[Dataset.ORDERBOOK].of_kind(Kind.INTEGER) == ["depth"]
