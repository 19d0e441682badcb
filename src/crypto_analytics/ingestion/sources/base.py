"""The shape every source shares, so adding a source is adding a file (plus its config section).

A source turns a request (token, interval, window) into a FetchResult: the normalised frame plus
every raw payload exactly as received, which the lake keeps so bronze can be rebuilt offline.
Sources never touch the warehouse and never swallow errors: they raise crypto_analytics.errors.

What a source can do is data on its class (`capabilities`, as freqtrade's exchanges declare
theirs), so the planner, the CLI and the registry read it instead of keeping their own lists.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pandas as pd

from crypto_analytics.config import Settings, SourceKey, Token
from crypto_analytics.errors import DatasetNotSupported
from crypto_analytics.ingestion.frames import Dataset
from crypto_analytics.intervals import INTERVALS


@dataclass(frozen=True)
class Capabilities:
    """What a source serves, declared on its class.

    datasets: what it fetches. token_key: the Token field holding its id for a token (None: it
    serves every token of the universe). intervals: candle intervals it can serve at all (its
    configured `intervals` pick the default among them). history_days: how far back it serves
    each interval, in days (absent: no limit); a config may narrow it. symbols_per_request: how
    many tokens one request may carry (the planner also caps it by ingestion.symbols_per_request).
    """

    datasets: frozenset[Dataset]
    token_key: SourceKey | None
    intervals: frozenset[str] = frozenset(INTERVALS)
    history_days: Mapping[str, int] = field(default_factory=dict)
    symbols_per_request: int | None = None


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
    """Base class of every source. Subclasses set `name` and `capabilities` and override the
    fetches they serve.

    `name` is the module's name and the config key (sources.<name> in config.yaml, the --source
    CLI value); `source_api` is what lands in bronze's source_api column (for ccxt, the exchange
    id).
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def datasets(self) -> frozenset[Dataset]:
        return self.capabilities.datasets

    @property
    def source_api(self) -> str:
        return self.name

    def intervals(self) -> list[str]:
        """Candle intervals fetched when none are named: `sources.<name>.intervals`."""
        config = getattr(self.settings.sources, self.name, None)
        return list(getattr(config, "intervals", []))

    def history_limit(self, interval: str) -> timedelta | None:
        """How far back this source serves `interval` candles (None: no limit)."""
        days = self.capabilities.history_days.get(interval)
        return timedelta(days=days) if days is not None else None

    def check_interval(self, interval: str) -> None:
        """DatasetNotSupported naming what the source serves, for an interval it cannot serve."""
        if Dataset.OHLCV not in self.datasets:
            raise DatasetNotSupported(self.name, "does not serve OHLCV candles")
        if interval not in self.capabilities.intervals:
            served = ", ".join(i for i in INTERVALS if i in self.capabilities.intervals)
            raise DatasetNotSupported(self.name, f"no {interval} candles; it serves {served}")

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
