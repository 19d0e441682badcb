"""A source is its module plus its settings section, and what it can do is data on its class:
the registry, the CLI's choices and dbt's source precedence are checked against that pairing."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest
import yaml

import crypto_analytics.ingestion.sources as sources_package
from crypto_analytics.config import Token
from crypto_analytics.errors import ConfigError, DatasetNotSupported
from crypto_analytics.ingestion.frames import Dataset
from crypto_analytics.ingestion.sources.registry import (
    check_source_names,
    get_source,
    source_class,
    source_names,
)

ROOT = Path(__file__).resolve().parents[4]
#: Modules of the sources package that are not sources themselves.
SHARED_MODULES = {"base", "registry", "binance_format"}


def test_every_settings_section_is_a_source_module_and_every_module_has_a_section():
    modules = {m.name for m in pkgutil.iter_modules(sources_package.__path__)} - SHARED_MODULES
    assert set(source_names()) == modules
    for name in source_names():
        cls = source_class(name)
        assert cls.name == name
        assert cls.capabilities.datasets, name
        assert cls.capabilities.token_key in (None, *Token.model_fields), name


def test_unknown_names_list_the_choices_and_repeats_are_dropped():
    with pytest.raises(ConfigError, match="unknown source 'nasdaq'; choose from: yahoo, coingecko"):
        check_source_names(["nasdaq"])
    assert check_source_names(["synthetic", "yahoo", "synthetic"]) == ["synthetic", "yahoo"]


def test_dbt_ranks_every_source(settings):
    """Each candle source's rows need a rank in silver's source precedence (ccxt venues other
    than binance rank right after it by rule, see macros/source_precedence.sql)."""
    project = yaml.safe_load((ROOT / "dbt" / "dbt_project.yml").read_text())
    precedence = project["vars"]["source_precedence"]
    for name in source_names():
        if Dataset.OHLCV not in source_class(name).capabilities.datasets:
            continue
        source = get_source(name, settings) if name != "exchange" else None
        source_api = (
            source.source_api if source is not None else settings.sources.exchange.exchange_id
        )
        assert source_api in precedence, name


def test_capabilities_drive_interval_checks(settings):
    yahoo = get_source("yahoo", settings)
    with pytest.raises(DatasetNotSupported, match="no 4h candles; it serves 1m, 5m, 15m, 1h, 1d"):
        yahoo.check_interval("4h")
    with pytest.raises(DatasetNotSupported, match="does not serve OHLCV"):
        get_source("coingecko", settings).check_interval("1d")
    assert yahoo.history_limit("1m").days == 7 and yahoo.history_limit("1d") is None
    assert get_source("synthetic", settings).datasets == frozenset(Dataset)


def test_a_configured_history_limit_narrows_the_declared_one(monkeypatch):
    from crypto_analytics.config import get_settings

    monkeypatch.setenv("CRYPTO_SOURCES__YAHOO__INTRADAY_HISTORY_DAYS", '{"1m": 5}')
    get_settings.cache_clear()
    assert get_source("yahoo", get_settings()).history_limit("1m").days == 5
