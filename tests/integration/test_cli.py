"""The console command: the offline demo end to end, and bad input rejected by name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crypto_analytics.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_demo_lands_synthetic_data_and_prints_a_summary(warehouse_url):
    # The data half only: the analytics steps need months of history (tests/ml, tests/dashboard).
    result = runner.invoke(app, ["demo", "--days", "30", "--hourly-days", "2", "--no-analytics"])
    assert result.exit_code == 0, result.output
    assert "raw_crypto_prices" in result.output and "synthetic" in result.output
    assert "quarantined rows: 0" in result.output
    # 38 tokens × (30 daily + 48 hourly candles), whatever minute the test runs at (±1 open candle).
    line = next(line for line in result.output.splitlines() if line.startswith("raw_crypto_prices"))
    rows = int(line.split()[2])
    assert 38 * (29 + 47) <= rows <= 38 * (30 + 48)
    # ...and ends with silver and gold built by dbt.
    assert "silver.technical_indicators" in result.output
    gold = {
        line.split()[0]: int(line.split()[1])
        for line in result.output.splitlines()
        if line.strip().startswith("gold.")
    }
    assert gold["gold.daily_crypto_metrics"] >= 38 * 29
    assert gold["gold.category_metrics"] > 0 and gold["gold.correlation_matrix"] > 0


def test_backfill_twice_inserts_nothing_the_second_time(warehouse_url):
    args = [
        "backfill",
        "--source",
        "synthetic",
        "--symbol",
        "BTC",
        "--interval",
        "1d",
        "--dataset",
        "ohlcv",
        "--since",
        "2024-01-01",
        "--until",
        "2024-02-01",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "31 rows inserted" in first.output
    second = runner.invoke(app, args)
    assert "0 rows inserted" in second.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "--source", "nasdaq"], "unknown source 'nasdaq'"),
        (["ingest", "--source", "synthetic", "--symbol", "XYZ"], "unknown symbol 'XYZ'"),
        (["backfill", "--since", "last tuesday"], "--since 'last tuesday' is not a date"),
        (
            ["backfill", "--since", "2024-02-01", "--until", "2024-01-01", "--source", "synthetic"],
            "must be before",
        ),
        (
            ["ingest", "--source", "synthetic", "--dataset", "trades"],
            "unknown dataset 'trades'; choose from: ohlcv, market, orderbook",
        ),
    ],
)
def test_bad_input_exits_1_naming_the_problem(warehouse_url, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["backfill", "--source", "synthetic", "--symbol", "BTC", "--since", "2999-01-01"],
            "lies entirely in the future",
        ),
        (
            ["backfill", "--source", "synthetic", "--symbol", "BTC", "-i", "1h", "-d", "ohlcv",
             "--since", "2024-01-01T10:10", "--until", "2024-01-01T10:50"],
            "no closed candle opens in the window [2024-01-01 10:10, 2024-01-01 10:50) UTC",
        ),
        (
            ["backfill", "--source", "exchange", "--symbol", "BUSD", "--dataset", "ohlcv",
             "--since", "2024-01-01", "--until", "2024-02-01"],
            "nothing to fetch in the window: exchange BUSD: BUSD was delisted",
        ),
        (["replay", "--dataset", "trades"], "unknown dataset 'trades'; choose from: ohlcv, market, orderbook"),
    ],
)  # fmt: skip
def test_windows_and_datasets_that_cannot_be_served_exit_1_with_the_reason(
    warehouse_url, args, message
):
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_skipped_token_says_why_at_default_verbosity(warehouse_url):
    result = runner.invoke(app, ["ingest", "--source", "exchange", "--symbol", "BUSD"])
    assert result.exit_code == 0, result.output
    assert "skipped: exchange BUSD: BUSD was delisted by Binance in December 2023" in result.output
    assert "nothing new to fetch" in result.output


def test_replay_of_a_source_the_lake_does_not_hold_lists_what_it_holds(warehouse_url):
    args = ["backfill", "--source", "synthetic", "--symbol", "BTC", "-i", "1d",
            "--dataset", "ohlcv", "--since", "2024-01-01", "--until", "2024-01-05"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["replay", "--source", "nasdaq"])
    assert result.exit_code == 1
    assert "the lake holds no batch of source 'nasdaq'; it holds: synthetic" in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CRYPTO_INGESTION__DEFAULT_SOURCES": "synthetic"},
            "error: CRYPTO_INGESTION__DEFAULT_SOURCES='synthetic' is not JSON",
        ),
        (
            {"CRYPTO_INGESTON__MAX_RETRIES": "3"},
            "error: unknown setting CRYPTO_INGESTON__MAX_RETRIES",
        ),
        (
            {"CRYPTO_INGESTION__MAX_RETRIES": "many"},
            "error: invalid configuration: ingestion.max_retries",
        ),
    ],
)
def test_settings_mistakes_are_one_red_line(warehouse_url, monkeypatch, env, message):
    from crypto_analytics.config import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_bad_yaml_is_one_red_line(warehouse_url, monkeypatch, tmp_path):
    from crypto_analytics.config import get_settings

    bad = tmp_path / "config.yaml"
    bad.write_text("tokens: [\n  {symbol: BTC\n")
    monkeypatch.setenv("CRYPTO_CONFIG_FILE", str(bad))
    get_settings.cache_clear()
    result = runner.invoke(app, ["summary"])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {bad} is not valid YAML (line ")
    assert result.output.count("\n") == 1


def test_the_default_sources_setting_drives_ingest(warehouse_url, monkeypatch):
    """`CRYPTO_INGESTION__DEFAULT_SOURCES='["synthetic"]'` (one line in .env) runs offline."""
    from crypto_analytics.config import get_settings

    monkeypatch.setenv("CRYPTO_INGESTION__DEFAULT_SOURCES", '["synthetic"]')
    get_settings.cache_clear()
    args = ["backfill", "--symbol", "BTC", "-i", "1d", "--dataset", "ohlcv",
            "--since", "2024-01-01", "--until", "2024-01-03"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 rows inserted" in result.output
