"""The universe and settings load from config/config.yaml, and bad config fails naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crypto_analytics.config import get_settings, tokens_for_source
from crypto_analytics.errors import ConfigError, SymbolUnavailable

CATEGORIES = {
    "Payment": {"USDT", "USDC", "DAI", "BUSD", "TUSD", "XRP"},
    "DeFi": {"UNI", "AAVE", "COMP", "SUSHI", "MKR", "CAKE", "CRV"},
    "Layer 1": {"BTC", "ETH", "SOL", "AVAX", "ADA", "DOT"},
    "Meme": {"DOGE", "SHIB", "FLOKI", "PEPE", "CKB"},
    "NFT": {"SAND", "MANA", "AXS", "ENJ", "THETA"},
    "Infrastructure": {"LINK", "GRT", "RUNE", "AGIX", "OCEAN", "NEAR", "TAO"},
}


def test_universe_is_the_designed_38_tokens_in_six_categories_plus_bnb_and_dash(settings):
    by_category: dict[str, set[str]] = {}
    for token in settings.tokens:
        by_category.setdefault(token.category, set()).add(token.symbol)
    for category, symbols in CATEGORIES.items():
        assert by_category[category] == symbols
    assert by_category["Other"] == {"BNB", "DASH"}
    assert len(settings.tokens) == 38


def test_delisted_merged_and_renamed_tokens_are_skipped_on_the_exchange_with_a_reason(settings, caplog):
    caplog.set_level("INFO")
    served = {t.symbol for t, _ in tokens_for_source(settings.tokens, "exchange")}
    for gone in ("BUSD", "AGIX", "OCEAN", "MKR", "USDT"):
        assert gone not in served
    assert "BTC" in served and len(served) == 32
    assert "AGIX skipped: AGIX merged into FET" in caplog.text
    with pytest.raises(SymbolUnavailable, match="BUSD was delisted"):
        settings.token("BUSD").source_id("exchange")


def test_source_ids(settings):
    assert settings.token("uni").yahoo == "UNI7083-USD"
    assert settings.token("AVAX").coingecko == "avalanche-2"
    assert settings.token("BTC").exchange == "BTC/USDT"


def test_unknown_symbol_lists_the_universe(settings):
    with pytest.raises(ConfigError, match="unknown symbol 'XYZ'.*BTC"):
        settings.select_tokens(["BTC", "XYZ"])


def test_environment_overrides_yaml(monkeypatch):
    monkeypatch.setenv("CRYPTO_SOURCES__EXCHANGE__EXCHANGE_ID", "kraken")
    monkeypatch.setenv("CRYPTO_INGESTION__INITIAL_LOOKBACK_DAYS", "7")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.sources.exchange.exchange_id == "kraken"
    assert settings.ingestion.initial_lookback_days == 7


def _write_config(tmp_path: Path, mutate) -> Path:
    original = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text())
    mutate(original)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(original))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["tokens"].append(dict(c["tokens"][0])), "listed twice"),
        (lambda c: c["tokens"][0].pop("unavailable"), "give either a exchange id or a reason"),
        (lambda c: c["sources"]["yahoo"].update(intervals=["2d"]), "unknown interval '2d'"),
        (lambda c: c["sources"]["coingecko"].update(plan="gold"), "plan"),
        (lambda c: c["ingestion"].update(initial_lookback_days=0), "initial_lookback_days"),
    ],
)
def test_invalid_config_names_what_is_wrong(tmp_path, monkeypatch, mutate, message):
    monkeypatch.setenv("CRYPTO_CONFIG_FILE", str(_write_config(tmp_path, mutate)))
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=message):
        get_settings()


def test_missing_config_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYPTO_CONFIG_FILE", str(tmp_path / "nope.yaml"))
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="does not point at a file"):
        get_settings()
