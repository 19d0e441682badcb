"""The normalised frames every source returns, one per dataset, and the bronze table each feeds.

Every source module returns exactly these columns in this order, so validation, the lake and
the loader never care where a frame came from. Timestamps are tz-aware UTC (candle open time).
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd


class Dataset(StrEnum):
    OHLCV = "ohlcv"
    MARKET = "market"
    ORDERBOOK = "orderbook"


#: Normalised columns per dataset (lineage columns are added by the loader).
COLUMNS: dict[Dataset, list[str]] = {
    Dataset.OHLCV: [
        "timestamp",
        "symbol",
        "interval",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "quote_currency",
        "source_api",
    ],
    Dataset.MARKET: [
        "timestamp",
        "symbol",
        "price",
        "market_cap",
        "circulating_supply",
        "total_volume",
        "quote_currency",
        "source_api",
    ],
    Dataset.ORDERBOOK: [
        "timestamp",
        "symbol",
        "bids",
        "asks",
        "depth",
        "best_bid",
        "best_ask",
        "spread",
        "mid",
        "quote_currency",
        "source_api",
    ],
}

#: The bronze table each dataset lands in, and the columns of its natural key.
BRONZE_TABLE: dict[Dataset, str] = {
    Dataset.OHLCV: "bronze.raw_crypto_prices",
    Dataset.MARKET: "bronze.raw_market_data",
    Dataset.ORDERBOOK: "bronze.raw_orderbook",
}
NATURAL_KEY: dict[Dataset, list[str]] = {
    Dataset.OHLCV: ["source_api", "symbol", "interval", "timestamp"],
    Dataset.MARKET: ["source_api", "symbol", "timestamp"],
    Dataset.ORDERBOOK: ["source_api", "symbol", "timestamp"],
}

_FLOAT_COLUMNS = {
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "price",
    "market_cap",
    "circulating_supply",
    "total_volume",
    "best_bid",
    "best_ask",
    "spread",
    "mid",
}


def empty_frame(dataset: Dataset) -> pd.DataFrame:
    """A zero-row frame with the dataset's columns and dtypes."""
    return conform(pd.DataFrame(columns=COLUMNS[dataset]), dataset)


def conform(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Order the columns and coerce dtypes; raises KeyError naming missing columns.

    Values that cannot be parsed become NaN/NaT rather than raising, so validation can quarantine
    the row with a reason instead of losing the batch.
    """
    missing = [c for c in COLUMNS[dataset] if c not in frame.columns]
    if missing:
        raise KeyError(f"{dataset} frame is missing columns: {', '.join(missing)}")
    out = frame.loc[:, COLUMNS[dataset]].copy()
    if pd.api.types.is_datetime64_any_dtype(out["timestamp"]):
        out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    else:
        # ISO 8601 explicitly: pandas' format guessing turns valid mixed-format stamps into NaT.
        out["timestamp"] = pd.to_datetime(
            out["timestamp"], utc=True, errors="coerce", format="ISO8601"
        )
    for column in out.columns:
        if column in _FLOAT_COLUMNS:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    if "depth" in out.columns:
        out["depth"] = pd.to_numeric(out["depth"], errors="coerce").astype("Int64")
    for column in ("symbol", "interval", "quote_currency", "source_api"):
        if column in out.columns:
            out[column] = out[column].astype("string")
    return out.reset_index(drop=True)
