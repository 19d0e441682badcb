"""Price thresholds and moves as pure functions: boundaries, directions, missing data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crypto_analytics.alerts.price import (
    Move,
    PricePoint,
    move_observations,
    threshold_observations,
)
from crypto_analytics.alerts.rules import parse_rules

AT = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)


def rule(text: str):
    return parse_rules(f"rules: [{text}]").rules[0]


def test_threshold_fires_strictly_beyond_its_bounds():
    r = rule("{id: band, type: price_threshold, symbols: [BTC, ETH, SOL], below: 100, above: 200}")
    prices = {
        "BTC": PricePoint(200.0, AT),
        "ETH": PricePoint(200.01, AT),
        "SOL": PricePoint(99.5, AT),
    }
    by = {o.subject: o for o in threshold_observations(r, prices, "test")}
    assert by["BTC"].status == "ok"  # at the bound is not beyond it
    assert (by["ETH"].status, by["ETH"].threshold, by["ETH"].value) == ("firing", 200, 200.01)
    assert by["ETH"].message == "ETH 200.01 above 200.00"
    assert (by["SOL"].status, by["SOL"].threshold) == ("firing", 100)
    assert by["SOL"].observed_at == AT


def test_threshold_without_a_price_says_where_it_looked():
    r = rule("{id: a, type: price_threshold, symbols: [PEPE], above: 0.00001}")
    (obs,) = threshold_observations(r, {}, "gold.daily_crypto_metrics")
    assert (obs.status, obs.message) == ("no_data", "no PEPE price in gold.daily_crypto_metrics")


@pytest.mark.parametrize(
    ("direction", "end", "status"),
    [
        ("either", 105.0, "firing"),
        ("either", 95.0, "firing"),
        ("either", 104.99, "ok"),
        ("up", 95.0, "ok"),
        ("up", 105.0, "firing"),
        ("down", 105.0, "ok"),
        ("down", 94.0, "firing"),
    ],
)
def test_moves_by_direction(direction, end, status):
    r = rule(f"{{id: m, type: price_move, window: 1h, pct: 5, direction: {direction}}}")
    start = PricePoint(100.0, datetime(2024, 5, 1, 11, 1, tzinfo=UTC))
    (obs,) = move_observations(r, {"BTC": Move(start, PricePoint(end, AT))}, "the stream")
    assert obs.status == status
    assert obs.value == pytest.approx((end / 100 - 1) * 100)
    assert obs.details["start_price"] == 100.0 and obs.details["window"] == "1h"


def test_move_without_its_start_price_is_no_data_not_a_bridge():
    r = rule("{id: m, type: price_move, window: 7d, pct: 10}")
    observations = move_observations(r, {"BTC": None}, "gold")
    assert [(o.subject, o.status) for o in observations] == [("BTC", "no_data")]
    (whole,) = move_observations(r, {}, "gold")
    assert (whole.subject, whole.status) == ("*", "no_data")
