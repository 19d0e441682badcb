"""Portfolio drift (bands from the rule or from each row), model drift (the forecasting verdict),
and stale data (ages against max_age), each against its gold table's contract."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from crypto_analytics.alerts.freshness import stale_observations
from crypto_analytics.alerts.model_drift import DRIFT_COLUMNS, drift_observations
from crypto_analytics.alerts.portfolio_drift import (
    REBALANCING_COLUMNS,
    portfolio_drift_observations,
)
from crypto_analytics.alerts.rules import parse_rules

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def rule(text: str):
    return parse_rules(f"rules: [{text}]").rules[0]


def rebalancing(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=REBALANCING_COLUMNS)


def test_portfolio_drift_uses_each_rows_band_by_default_and_the_newest_run():
    weights = rebalancing(
        [
            (date(2024, 4, 22), "max_sharpe", "BTC", 0.60, 0.30, 0.30, 0.075),  # an older run
            (date(2024, 4, 29), "max_sharpe", "BTC", 0.36, 0.30, 0.06, 0.075),
            (date(2024, 4, 29), "max_sharpe", "ETH", 0.14, 0.25, -0.11, 0.0625),
            (date(2024, 4, 29), "max_sharpe", "SOL", 0.05, 0.02, 0.03, 0.02),
        ]
    )
    (obs,) = portfolio_drift_observations(rule("{id: p, type: portfolio_drift}"), weights, "gold")
    assert (obs.subject, obs.status) == ("portfolio", "firing")
    assert obs.value == pytest.approx(0.11)
    assert [o["symbol"] for o in obs.details["outside"]] == ["ETH", "SOL"]  # largest first
    assert "ETH -11.0 pp (band 6.2)" in obs.message and "BTC" not in obs.message
    assert obs.observed_at == datetime(2024, 4, 30, tzinfo=UTC)


def test_portfolio_drift_with_an_absolute_band():
    weights = rebalancing([(date(2024, 4, 29), "hrp", "BTC", 0.36, 0.30, 0.06, 0.02)])
    (wide,) = portfolio_drift_observations(
        rule("{id: p, type: portfolio_drift, band: 0.1}"), weights, "g"
    )
    (tight,) = portfolio_drift_observations(
        rule("{id: p, type: portfolio_drift, band: 0.05}"), weights, "g"
    )
    assert (wide.status, wide.threshold) == ("ok", 0.1)
    assert tight.status == "firing"
    (empty,) = portfolio_drift_observations(
        rule("{id: p, type: portfolio_drift}"), rebalancing([]), "g"
    )
    assert (empty.subject, empty.status) == ("*", "no_data")


def drift_checks(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def test_model_drift_follows_the_newest_check_per_model_and_horizon():
    at = pd.Timestamp("2024-04-30 03:00", tz="UTC")
    checks = drift_checks(
        [
            (date(2024, 4, 29), "prophet", "3", 7, 25, 0.09, 0.04, 2.25, 1.5, True, at),
            (date(2024, 4, 30), "prophet", "3", 7, 25, 0.05, 0.04, 1.25, 1.5, False, at),
            (date(2024, 4, 30), "lstm", "8", 1, 25, 0.08, 0.04, 2.0, 1.5, True, at),
            (date(2024, 4, 30), "lstm", "8", 30, 3, None, 0.04, None, 1.5, False, at),
        ]
    )
    by = {
        o.subject: o for o in drift_observations(rule("{id: d, type: model_drift}"), checks, "gold")
    }
    assert by["prophet 7d"].status == "ok"  # the newer check no longer drifts
    assert (by["lstm 1d"].status, by["lstm 1d"].value, by["lstm 1d"].threshold) == (
        "firing",
        2.0,
        1.5,
    )
    assert by["lstm 30d"].status == "no_data"
    only = drift_observations(rule("{id: d, type: model_drift, models: [prophet]}"), checks, "gold")
    assert [o.subject for o in only] == ["prophet 7d"]


def test_stale_data_fires_beyond_max_age_and_for_a_subject_with_no_data():
    r = rule("{id: s, type: stale_data, dataset: candles, max_age: 36h}")
    newest = {"BTC": NOW - timedelta(hours=2), "ETH": NOW - timedelta(hours=40), "DAI": None}
    by = {o.subject: o for o in stale_observations(r, newest, NOW, "gold.data_quality_summary")}
    assert by["BTC"].status == "ok" and by["BTC"].value == pytest.approx(2.0)
    assert by["ETH"].status == "firing" and "40.0 h old (max 36h)" in by["ETH"].message
    assert by["DAI"].status == "firing" and by["DAI"].threshold == 36
    wanted = rule("{id: s, type: stale_data, dataset: stream, max_age: 5m, symbols: [BTC, SOL]}")
    subjects = {o.subject: o.status for o in stale_observations(wanted, newest, NOW, "x")}
    assert subjects == {"BTC": "firing", "SOL": "no_data"}
