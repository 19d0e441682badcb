"""The alert engine on gold built by dbt from the synthetic market, with the alert views built too:
the rules read the real gold tables (their real columns, types and keys), not stand-ins, and the
stream's heartbeat is read through gold.stream_heartbeat (and its candles through
gold.live_candles). No rule may error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from crypto_analytics.alerts.service import evaluate_rules
from crypto_analytics.config import get_settings
from crypto_analytics.dbt_runner import run_dbt
from crypto_analytics.ingestion.pipeline import ingest, plan_requests

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYMBOLS = ["BTC", "ETH", "SOL"]
RULES = """
rules:
  - {id: btc_band, type: price_threshold, symbols: [BTC], below: 1, above: 1000000}
  - {id: daily_move, type: price_move, window: 1d, pct: 0.001}
  - {id: vol_spike, type: volatility_spike, window_days: 7, history_days: 60, ratio: 1.0001, min_history: 30}
  - {id: stale, type: stale_data, dataset: candles, max_age: 1d, symbols: [BTC, ETH, SOL]}
  - {id: stale_stream, type: stale_data, dataset: stream, max_age: 10m}
"""


def test_rules_read_the_gold_dbt_builds(warehouse_url, tmp_path: Path, monkeypatch):
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    requests = plan_requests(
        sources=["synthetic"],
        symbols=SYMBOLS,
        intervals=["1d"],
        datasets=["ohlcv", "market"],
        since=until - timedelta(days=150),
        until=until,
    )
    minutes = plan_requests(
        sources=["synthetic"],
        symbols=SYMBOLS,
        intervals=["1m"],
        datasets=["ohlcv"],
        since=until - timedelta(minutes=30),
        until=until,
    )
    assert not ingest(requests + minutes).failures
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(
            """
            insert into stream.heartbeat (stream_id, feed, source_api, interval, symbols, status,
                started_at, last_candle_at, updated_at)
            values ('synthetic:kline_1m', 'synthetic', 'synthetic', '1m', '{BTC}', 'connected',
                now() - interval '1 hour', now() - interval '30 minutes', now())
            """
        )
    run_dbt(
        [
            "build",
            "--select",
            "+daily_crypto_metrics",
            "+data_quality_summary",
            "path:models/gold/alerts",
        ]
        + [
            "--quiet",
            "--target-path",
            str(tmp_path / "dbt_target"),
            "--indirect-selection",
            "cautious",
        ]
    )
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    monkeypatch.setenv("CRYPTO_ALERTS__RULES_FILE", str(rules))
    get_settings.cache_clear()

    report = evaluate_rules(evaluated_by="cli")
    assert report.errors == [] and report.no_data == [], report.no_data
    firing = {line.split(": ")[0] for line in report.firing}
    # synthetic daily moves exceed 0.001 % for every token; the stream is 29 minutes behind
    assert {f"daily_move [{s}]" for s in SYMBOLS} <= firing
    assert "stale_stream [synthetic:kline_1m]" in firing
    assert not any(line.startswith(("btc_band", "stale [")) for line in report.firing)
    with psycopg.connect(warehouse_url) as conn:
        subjects = conn.execute(
            "select rule_id, count(*) from gold.alert_rule_state group by rule_id order by 1"
        ).fetchall()
        alerts = conn.execute("select count(*), min(status) from gold.alerts").fetchone()
        health = conn.execute("select health from gold.stream_heartbeat").fetchone()
        live = conn.execute(
            "select symbol, count(*), max(close_time) from gold.live_candles group by 1 order by 1"
        ).fetchall()
    assert dict(subjects) == {
        "btc_band": 1,
        "daily_move": 3,
        "stale": 3,
        "stale_stream": 1,
        "vol_spike": 3,
    }
    assert alerts is not None and alerts[0] == len(report.opened) + len(report.suppressed)
    assert health == ("lagging",)
    # the stream source's 1m candles of the last day, as they land (the 1d candles are not)
    assert live == [(symbol, 30, until) for symbol in SYMBOLS]
