"""Which sources exist: one per `sources.<name>` settings section, in the module of that name.

Why derive it: a list of sources kept here as well as in the settings, the CLI help and the docs
drifted every time a source was added. Now a source is its module
(`ingestion/sources/<name>.py`, defining one `Source` subclass with that `name`) plus its settings
section (`SourcesConfig.<name>` and `sources.<name>` in config.yaml); the registry, the CLI's
choices and the planner read both. tests/unit/ingestion/sources/test_registry.py checks the pairing.

Sources are imported lazily (ccxt and yfinance are heavy), so listing or validating a --source
value costs nothing and an Airflow DAG can name sources without importing them at parse time.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache

from crypto_analytics.config import Settings, SourcesConfig
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.sources.base import Source

PACKAGE = "crypto_analytics.ingestion.sources"


def source_names() -> list[str]:
    """Every source's name, in the settings' order (no source module is imported)."""
    return list(SourcesConfig.model_fields)


def check_source_names(names: list[str]) -> list[str]:
    """The names without repeats (in the order given), or ConfigError naming the unknown one and
    the valid choices."""
    known = source_names()
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown source {name!r}; choose from: {', '.join(known)}")
    return list(dict.fromkeys(names))


@cache
def source_class(name: str) -> type[Source]:
    """The Source subclass of `sources/<name>.py` (imported on first use)."""
    check_source_names([name])
    module = importlib.import_module(f"{PACKAGE}.{name}")
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Source) and cls is not Source and getattr(cls, "name", None) == name
    ]
    if len(found) != 1:
        raise ConfigError(
            f"{PACKAGE}.{name} must define exactly one Source subclass named {name!r}, "
            f"found {len(found)}"
        )
    return found[0]


def get_source(name: str, settings: Settings) -> Source:
    """Instantiate a source by its config name."""
    return source_class(name)(settings)
