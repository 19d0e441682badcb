"""The shape every source shares, so adding a source is adding a file.

A source turns a request (token, interval, window) into a FetchResult: the normalised frame plus
every raw payload exactly as received, which the lake keeps so bronze can be rebuilt offline.
Sources never touch the warehouse and never swallow errors: they raise crypto_analytics.errors.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from crypto_analytics.config import Settings, Token
from crypto_analytics.errors import DatasetNotSupported
from crypto_analytics.ingestion.frames import Dataset


@dataclass(frozen=True)
class RawPayload:
    """One response body as received, with what was asked, for the raw lake."""

    body: bytes
    request: str  # URL with query, or a description for non-HTTP sources
    media_type: str = "application/json"  # application/json | text/csv | application/zip
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def extension(self) -> str:
        return {"application/json": "json", "text/csv": "csv", "application/zip": "zip"}.get(
            self.media_type, "bin"
        )


@dataclass
class FetchResult:
    """What one fetch produced: a normalised frame (frames.COLUMNS[dataset]) and its payloads."""

    source_api: str
    dataset: Dataset
    frame: pd.DataFrame
    payloads: list[RawPayload]


class Source(ABC):
    """Base class of every source. Subclasses set `name`/`datasets` and override what they serve.

    `name` is the config key (sources.<name> in config.yaml, and the --source CLI value);
    `source_api` is what lands in bronze's source_api column (for ccxt, the exchange id).
    """

    name: str
    datasets: frozenset[Dataset] = frozenset()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def source_api(self) -> str:
        return self.name

    def intervals(self) -> list[str]:
        """Candle intervals this source fetches by default."""
        return []

    def fetch_ohlcv(
        self, token: Token, interval: str, start: datetime, end: datetime
    ) -> FetchResult:
        """Candles with open time in [start, end) for one token."""
        raise DatasetNotSupported(self.name, "does not serve OHLCV candles")

    def fetch_market_data(self, tokens: list[Token], start: datetime, end: datetime) -> FetchResult:
        """Price, market cap, supply and volume snapshots in [start, end) for many tokens."""
        raise DatasetNotSupported(self.name, "does not serve market data")

    def fetch_orderbook(self, token: Token, depth: int) -> FetchResult:
        """A snapshot of the top `depth` levels of the order book, now."""
        raise DatasetNotSupported(self.name, "does not serve order books")
