"""The console command: the offline demo end to end, and bad input rejected by name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crypto_analytics.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_demo_lands_synthetic_data_and_prints_a_summary(warehouse_url):
    result = runner.invoke(app, ["demo", "--days", "30", "--hourly-days", "2"])
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
    args = ["backfill", "--source", "synthetic", "--symbol", "BTC", "--interval", "1d",
            "--dataset", "ohlcv", "--since", "2024-01-01", "--until", "2024-02-01"]
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
        (["backfill", "--since", "2024-02-01", "--until", "2024-01-01", "--source", "synthetic"], "must be before"),
        (["ingest", "--source", "synthetic", "--dataset", "trades"], "unknown dataset 'trades'; choose from: ohlcv, market, orderbook"),
    ],
)
def test_bad_input_exits_1_naming_the_problem(warehouse_url, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
