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


def test_delisted_merged_and_renamed_tokens_are_skipped_on_the_exchange_with_a_reason(
    settings, caplog
):
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
    original = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text()
    )
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


# --- every settings mistake is one line naming what was wrong --------------------------------


def _error(monkeypatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with pytest.raises(ConfigError) as caught:
        get_settings()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_list_setting_given_a_bare_word_names_the_variable_and_the_format(monkeypatch):
    message = _error(monkeypatch, CRYPTO_INGESTION__DEFAULT_SOURCES="synthetic")
    assert message.startswith("CRYPTO_INGESTION__DEFAULT_SOURCES='synthetic' is not JSON")
    assert "a JSON list" in message


def test_a_json_list_in_the_environment_is_the_documented_way(monkeypatch):
    monkeypatch.setenv("CRYPTO_INGESTION__DEFAULT_SOURCES", '["synthetic"]')
    get_settings.cache_clear()
    assert get_settings().ingestion.default_sources == ["synthetic"]


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("CRYPTO_INGESTON__MAX_RETRIES", "no key 'ingeston'; did you mean 'ingestion'?"),
        (
            "CRYPTO_INGESTION__MAX_RETRY",
            "section 'ingestion' has no key 'max_retry'; did you mean 'max_retries'?",
        ),
        ("CRYPTO_SOURCES__YAHOO__INTERVAL", "section 'sources.yahoo' has no key 'interval'"),
        ("CRYPTO_INGESTION__MAX_RETRIES__X", "ingestion.max_retries is a single value"),
        ("CRYPTO_COINGECKO_API_KEY", "this secret is read from COINGECKO_API_KEY"),
        # sections other modules add are checked the same way, with nothing listed here
        (
            "CRYPTO_NOTIFICATIONS__SMTP__HOSTNAME",
            "section 'notifications.smtp' has no key 'hostname'",
        ),
    ],
)
def test_a_misspelt_crypto_variable_is_an_error_not_ignored(monkeypatch, variable, expected):
    message = _error(monkeypatch, **{variable: "3"})
    assert message.startswith(f"unknown setting {variable}")
    assert expected in message


def test_every_section_of_the_settings_model_is_walked(monkeypatch):
    """A section added to Settings by another module gets the same checks automatically."""
    from crypto_analytics.config import Settings

    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            message = _error(monkeypatch, **{f"CRYPTO_{name.upper()}__NO_SUCH_KEY": "1"})
            assert f"section '{name}' has no key 'no_such_key'" in message
            monkeypatch.delenv(f"CRYPTO_{name.upper()}__NO_SUCH_KEY")


def test_mapping_settings_accept_any_key(monkeypatch):
    monkeypatch.setenv("CRYPTO_SOURCES__COINGECKO__REQUESTS_PER_MINUTE__ENTERPRISE", "900")
    get_settings.cache_clear()
    assert get_settings().sources.coingecko.requests_per_minute["enterprise"] == 900


def test_a_malformed_value_names_the_key_the_value_and_the_variable(monkeypatch):
    message = _error(monkeypatch, CRYPTO_INGESTION__MAX_RETRIES="many")
    assert message == (
        "invalid configuration: ingestion.max_retries: Input should be a valid integer, unable "
        "to parse string as an integer, got 'many' (from CRYPTO_INGESTION__MAX_RETRIES)"
    )


def test_an_unknown_nested_yaml_key_is_an_error_with_a_suggestion(tmp_path, monkeypatch):
    path = _write_config(tmp_path, lambda c: c["sources"]["exchange"].update(page_limt=500))
    message = _error(monkeypatch, CRYPTO_CONFIG_FILE=str(path))
    assert "sources.exchange.page_limt: unknown key; did you mean 'page_limit'?" in message
    assert "(in config.yaml)" in message


def test_bad_yaml_names_the_file_line_and_column(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("tokens:\n  - {symbol: BTC\ningestion: [\n")
    message = _error(monkeypatch, CRYPTO_CONFIG_FILE=str(path))
    assert message.startswith(f"{path} is not valid YAML (line ")


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("- just\n- a list\n")
    assert "must be a mapping of settings sections, got a list" in _error(
        monkeypatch, CRYPTO_CONFIG_FILE=str(path)
    )


def test_a_validation_error_never_prints_the_database_url(tmp_path, monkeypatch):
    """A model validator's input is the whole settings dict: its repr held the URL."""
    path = _write_config(tmp_path, lambda c: c["tokens"].append(dict(c["tokens"][0])))
    message = _error(
        monkeypatch,
        CRYPTO_CONFIG_FILE=str(path),
        CRYPTO_DATABASE_URL="postgresql://admin:hunter2-secret@db.internal:5432/crypto",
    )
    assert "listed twice" in message
    assert "hunter2-secret" not in message and "db.internal" not in message


def test_settings_register_their_secrets_for_redaction(monkeypatch):
    from crypto_analytics.redaction import redact

    monkeypatch.setenv("CRYPTO_DATABASE_URL", "postgresql://u:pw-only-in-settings@h/db")
    get_settings.cache_clear()
    get_settings()
    monkeypatch.delenv("CRYPTO_DATABASE_URL")
    assert redact("server said pw-only-in-settings") == "server said ***"
