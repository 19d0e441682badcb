"""Which source modules exist, and which per-token id each one uses.

Sources are imported lazily (ccxt and yfinance are heavy), so listing or validating a --source
value costs nothing and an Airflow DAG can name sources without importing them at parse time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from crypto_analytics.config import Settings, SourceKey
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.sources.base import Source


@dataclass(frozen=True)
class SourceEntry:
    module: str
    class_name: str
    #: The Token field holding this source's id; None for a source that serves every token.
    token_key: SourceKey | None


SOURCES: dict[str, SourceEntry] = {
    "exchange": SourceEntry(
        "crypto_analytics.ingestion.sources.exchange", "ExchangeSource", "exchange"
    ),
    "binance_archive": SourceEntry(
        "crypto_analytics.ingestion.sources.binance_archive", "BinanceArchiveSource", "exchange"
    ),
    "yahoo": SourceEntry("crypto_analytics.ingestion.sources.yahoo", "YahooSource", "yahoo"),
    "coingecko": SourceEntry(
        "crypto_analytics.ingestion.sources.coingecko", "CoinGeckoSource", "coingecko"
    ),
    "synthetic": SourceEntry(
        "crypto_analytics.ingestion.sources.synthetic", "SyntheticSource", None
    ),
}


def check_source_names(names: list[str]) -> list[str]:
    """The names, unchanged, or ConfigError naming the unknown one and the valid choices."""
    for name in names:
        if name not in SOURCES:
            raise ConfigError(f"unknown source {name!r}; choose from: {', '.join(SOURCES)}")
    return names


def get_source(name: str, settings: Settings) -> Source:
    """Instantiate a source by its config name."""
    entry = SOURCES[check_source_names([name])[0]]
    cls = getattr(importlib.import_module(entry.module), entry.class_name)
    source: Source = cls(settings)
    return source
