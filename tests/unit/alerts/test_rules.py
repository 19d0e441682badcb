"""The rules file: the shipped config/alerts.yaml, defaults, and one clear error per bad input."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from crypto_analytics.alerts.rules import (
    PriceMoveRule,
    format_duration,
    load_rules,
    parse_duration,
    parse_rules,
)
from crypto_analytics.config import get_settings
from crypto_analytics.errors import ConfigError


def test_the_shipped_rules_file_covers_every_rule_type(settings):
    ruleset = load_rules(settings)
    assert {rule.type for rule in ruleset.rules} == {
        "price_threshold", "price_move", "volatility_spike", "portfolio_drift", "model_drift",
        "stale_data",
    }  # fmt: skip
    fast = ruleset.get("fast_move_1h")
    assert (
        isinstance(fast, PriceMoveRule) and fast.on_stream and fast.cooldown == timedelta(hours=2)
    )
    daily = ruleset.get("daily_move_15pct")
    assert isinstance(daily, PriceMoveRule) and not daily.on_stream
    assert ruleset.get("stale_stream").severity == "critical"


def test_defaults_fill_what_a_rule_leaves_out():
    ruleset = parse_rules(
        """
        defaults: {severity: critical, cooldown: 15m, channels: [webhook]}
        rules:
          - {id: a, type: price_threshold, symbols: [btc], above: 100}
          - {id: b, type: price_threshold, symbols: [ETH], below: 5, cooldown: 2d, channels: [email]}
        """
    )
    a, b = ruleset.rules
    assert (a.severity, a.cooldown, a.channels, a.symbols) == (
        "critical", timedelta(minutes=15), ["webhook"], ["BTC"],
    )  # fmt: skip
    assert (b.cooldown, b.channels) == (timedelta(days=2), ["email"])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("rules: [{id: a, type: price_spike}]", "expected tags: 'price_threshold', 'price_move'"),
        (
            "rules: [{id: a, type: price_threshold, symbols: [BTC]}]",
            "give `above`, `below` or both",
        ),
        (
            "rules: [{id: a, type: price_threshold, symbols: [BTC], above: 5, below: 9}]",
            "below (9.0) must be under above (5.0)",
        ),
        ("rules: [{id: a, type: price_threshold, symbols: [], above: 5}]", "rule a symbols"),
        ("rules: [{id: a, type: price_move, window: 36h, pct: 5}]", "must be under 1d"),
        ("rules: [{id: a, type: price_move, window: 90s, pct: 5}]", "whole minutes"),
        ("rules: [{id: a, type: price_move, window: 1h, pct: -5}]", "rule a pct"),
        (
            "rules: [{id: a, type: stale_data, dataset: candles, max_age: 5 mins}]",
            "is not a duration",
        ),
        ("rules: [{id: a, type: stale_data, dataset: bronze, max_age: 5m}]", "rule a dataset"),
        (
            "rules: [{id: a, type: stale_data, dataset: candles, max_age: 5m, colour: red}]",
            "rule a colour: Extra inputs are not permitted",
        ),
        (
            "rules: [{id: a, type: volatility_spike, min_history: 100, history_days: 30}]",
            "cannot exceed history_days",
        ),
        ("rules: [{id: Bad Id, type: model_drift}]", "must be lower-case"),
        ("rules: [{id: a, type: model_drift}, {id: a, type: model_drift}]", "used twice"),
        ("rules: [{id: a, type: model_drift, severity: loud}]", "rule a severity"),
        ("rules: [{id: a, type: model_drift, channels: [sms]}]", "rule a channels"),
        ("rules: {id: a}", "`rules` must be a list"),
        ("rules: [{id: a, type: [model_drift}", "not valid YAML"),
    ],
)
def test_bad_rules_fail_with_one_line_naming_the_rule(text, words):
    with pytest.raises(ConfigError) as raised:
        parse_rules(text)
    assert words in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unknown_symbols_are_checked_against_the_universe(tmp_path: Path, monkeypatch):
    path = tmp_path / "alerts.yaml"
    path.write_text("rules: [{id: a, type: price_threshold, symbols: [BTC, LUNA], above: 5}]")
    monkeypatch.setenv("CRYPTO_ALERTS__RULES_FILE", str(path))
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=r"rule a: unknown symbol\(s\) LUNA; the universe is: "):
        load_rules(get_settings())
    path.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        load_rules(get_settings())


def test_durations():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration(" 1.5h") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
    with pytest.raises(ValueError, match="positive"):
        parse_duration("0m")
    assert [format_duration(timedelta(seconds=s)) for s in (45, 300, 7200, 86400, 1209600)] == [
        "45s", "5m", "2h", "1d", "2w",
    ]  # fmt: skip
