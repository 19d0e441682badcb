"""`crypto-analytics alerts …` and `stream`: what they print, and bad input as one red line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from crypto_analytics.cli import app
from crypto_analytics.config import get_settings

pytestmark = pytest.mark.integration
runner = CliRunner()


def use_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    monkeypatch.setenv("CRYPTO_ALERTS__RULES_FILE", str(path))
    get_settings.cache_clear()


def test_rules_lists_the_shipped_file():
    result = runner.invoke(app, ["alerts", "rules"])
    assert result.exit_code == 0, result.output
    assert "9 rules, 9 enabled" in result.output
    assert "fast_move_1h" in result.output and "on stream" in result.output
    assert "btc_below_40k" in result.output and "on gold + stream" in result.output


def test_evaluate_history_and_deliver(warehouse_url, monkeypatch, tmp_path):
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("create schema if not exists gold")
        conn.execute(
            "create table gold.daily_crypto_metrics (symbol text, date date, close double precision,"
            " log_return double precision, _source_ingested_at timestamptz)"
        )
        conn.execute(
            "insert into gold.daily_crypto_metrics values ('BTC', %s, 39000, null, now())",
            (datetime.now(UTC).date() - timedelta(days=1),),
        )
    use_rules(
        monkeypatch,
        tmp_path,
        "rules:\n"
        "  - {id: btc_low, type: price_threshold, symbols: [BTC], below: 40000}\n"
        "  - {id: drift, type: model_drift}\n",
    )
    result = runner.invoke(app, ["alerts", "evaluate"])
    assert result.exit_code == 0, result.output
    assert "2 rules: 1 firing, 1 without data, 0 failed" in result.output
    assert "recorded, not sent:" in result.output and "no channel configured" in result.output
    assert "gold.model_drift does not exist; run the ml_inference DAG" in result.output
    history = runner.invoke(app, ["alerts", "history", "--rule", "btc_low"])
    assert history.exit_code == 0 and "FIRING: BTC 39,000.00 below 40,000.00" in history.output
    deliver = runner.invoke(app, ["alerts", "deliver"])
    assert deliver.exit_code == 0 and "0 sent, 0 failed, 0 pending" in deliver.output


@pytest.mark.parametrize(
    ("args", "rules", "words"),
    [
        (["alerts", "evaluate"], "rules: [{id: a, type: price_spike}]", "expected tags"),
        (
            ["alerts", "rules"],
            "rules: [{id: a, type: stale_data, dataset: x, max_age: 1h}]",
            "rule a dataset",
        ),
        (["alerts", "test", "--channel", "sms"], "rules: []", "unknown channel 'sms'"),
        (["alerts", "test"], "rules: []", "no channel configured"),
        (
            ["stream", "--feed", "kraken"],
            "rules: []",
            "unknown feed 'kraken'; choose from: auto, binance",
        ),
        (["stream", "--feed", "binance", "--symbol", "LUNA"], "rules: []", "unknown symbol 'LUNA'"),
        (
            ["stream", "--feed", "binance", "--symbol", "DAI"],
            "rules: []",
            "DAI cannot be streamed from Binance",
        ),
    ],
)
def test_bad_input_is_one_red_line(warehouse_url, monkeypatch, tmp_path, args, rules, words):
    use_rules(monkeypatch, tmp_path, rules)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.output.count("error: ") == 1 and words in result.output, result.output
    assert "Traceback" not in result.output
