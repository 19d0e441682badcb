"""The run against a real PostgreSQL: stored inputs, idempotent reruns, the report on disk, the
e-mail over a real local SMTP server (aiosmtpd), and the CLI's one-line errors."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import numpy as np
import pytest
from crypto_ml.errors import NotEnoughData
from crypto_ml.portfolio import pipeline, store
from crypto_ml.portfolio.estimators import covariance, expected_returns
from portfolio_testdata import RUN_DATE
from typer.testing import CliRunner

from crypto_analytics.cli import app
from crypto_analytics.config import get_settings
from crypto_analytics.errors import NotificationError
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration

TABLES = [
    "runs",
    "assets",
    "run_returns",
    "expected_returns",
    "covariance",
    "monte_carlo_runs",
    "monte_carlo",
    "strategies",
    "weights",
    "frontier",
    "backtest",
    "backtest_metrics",
]


def _counts(conn) -> dict[str, int]:
    return {
        table: conn.execute(f"select count(*) from portfolio.{table}").fetchone()[0]
        for table in TABLES
    }


def _optimise(url: str) -> None:
    with connect(url) as conn:
        pipeline.optimise_run(conn, RUN_DATE, get_settings())


def test_a_run_stores_its_exact_inputs_and_a_rerun_replaces_them(stand_in_gold, portfolio_env):
    _optimise(stand_in_gold)
    with connect(stand_in_gold) as conn:
        first = _counts(conn)
        inputs = store.load_inputs(conn, RUN_DATE)
        weights = conn.execute(
            "select strategy, sum(weight), min(weight), max(weight) from portfolio.weights "
            "where run_date = %s group by strategy",
            (RUN_DATE,),
        ).fetchall()
        excluded = dict(
            conn.execute(
                "select symbol, exclusion_reason from portfolio.assets where not is_eligible"
            ).fetchall()
        )
        run = store.load_run(conn, RUN_DATE)
    assert all(count > 0 for count in first.values()), first
    assert excluded == {"USDC": "stablecoin (portfolio.stablecoins = exclude)"}
    assert run.window_end == RUN_DATE - timedelta(days=1)
    assert run.config.symbols[0] == "BTC"  # the settings the run used are kept
    # The stored mu and Sigma are reproducible from the stored returns.
    np.testing.assert_allclose(
        inputs.expected_returns, expected_returns(inputs.returns, "mean"), rtol=1e-12
    )
    np.testing.assert_allclose(
        inputs.covariance, covariance(inputs.returns, "ledoit_wolf"), rtol=1e-10
    )
    assert {w[0] for w in weights} == {"max_sharpe", "min_volatility", "hrp", "equal_weight"}
    for _, total, low, high in weights:
        assert total == pytest.approx(1, abs=1e-9) and low >= 0 and high <= 0.35 + 1e-7

    _optimise(stand_in_gold)  # same run date again: same rows, no duplicates
    with connect(stand_in_gold) as conn:
        assert _counts(conn) == first
        again = store.load_inputs(conn, RUN_DATE)
    np.testing.assert_array_equal(again.covariance, inputs.covariance)


def test_a_failing_step_leaves_the_previous_run_whole(stand_in_gold, portfolio_env, monkeypatch):
    _optimise(stand_in_gold)
    with connect(stand_in_gold) as conn:
        before = _counts(conn)

    def broken(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(pipeline, "backtest_strategies", broken)
    with pytest.raises(RuntimeError, match="solver exploded"):
        _optimise(stand_in_gold)
    with connect(stand_in_gold) as conn:
        assert _counts(conn) == before


def test_report_is_written_then_emailed_over_smtp(stand_in_gold, portfolio_env, smtp_server):
    settings = get_settings()
    _optimise(stand_in_gold)
    with connect(stand_in_gold) as conn:
        path = pipeline.build_report(conn, RUN_DATE, settings)
        conn.commit()
        outcome = pipeline.send_report(conn, RUN_DATE, settings)
        status = conn.execute(
            "select email_status, report_path from portfolio.runs where run_date = %s",
            (RUN_DATE,),
        ).fetchone()
        trades = conn.execute(
            "select count(*) from portfolio.rebalancing where run_date = %s and action <> 'hold'",
            (RUN_DATE,),
        ).fetchone()[0]

    assert path.is_file() and (path.parent / "report.md").is_file()
    png = (path.parent / "frontier.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert outcome.status == "sent" and status == ("sent", str(path))
    assert len(smtp_server.messages) == 1
    envelope, message = smtp_server.messages[0]
    assert isinstance(message, EmailMessage)
    assert envelope.rcpt_tos == ["quant@example.com"]
    assert message["Subject"] == (
        f"Portfolio rebalancing {RUN_DATE}: {trades} trade{'s' * (trades != 1)} to the Max Sharpe "
        "target"
    )
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert f"# Portfolio rebalancing report: {RUN_DATE}" in text
    assert "| BTC |" in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert 'src="cid:frontier-chart"' in html and "data:image/png" not in html
    inline = [p for p in message.walk() if p.get("Content-ID") == "<frontier-chart>"]
    assert len(inline) == 1 and inline[0].get_content() == png
    attached = {p.get_filename(): p for p in message.iter_attachments()}
    assert set(attached) == {"report.html", "report.md", "frontier.png"}
    assert attached["report.html"].get_content() == path.read_text()
    assert "s3cret-pw" not in message.as_string()


def test_a_failed_send_keeps_the_report_and_fails_visibly(
    stand_in_gold, portfolio_env, smtp_server
):
    settings = get_settings()
    _optimise(stand_in_gold)
    smtp_server.reject_next = ["554 5.7.1 rejected by policy"]
    with connect(stand_in_gold) as conn:
        path = pipeline.build_report(conn, RUN_DATE, settings)
        conn.commit()
        with pytest.raises(NotificationError, match="554") as info:
            pipeline.send_report(conn, RUN_DATE, settings)
    assert str(path) in str(info.value)
    assert path.is_file()
    with connect(stand_in_gold) as conn:
        status, detail = conn.execute(
            "select email_status, email_detail from portfolio.runs where run_date = %s",
            (RUN_DATE,),
        ).fetchone()
    assert status == "failed" and "554" in detail
    assert smtp_server.messages == []


def test_without_an_smtp_host_the_send_is_skipped_and_says_why(stand_in_gold, portfolio_env):
    settings = get_settings()
    assert settings.notifications.smtp.host is None
    _optimise(stand_in_gold)
    with connect(stand_in_gold) as conn:
        path = pipeline.build_report(conn, RUN_DATE, settings)
        conn.commit()
        outcome = pipeline.send_report(conn, RUN_DATE, settings)
    assert outcome.status == "skipped"
    assert "e-mail is off" in outcome.detail and str(path) in outcome.detail


def test_cli_optimize_and_report(stand_in_gold, portfolio_env):
    runner = CliRunner()
    result = runner.invoke(
        app, ["portfolio", "optimize", "--run-date", str(RUN_DATE), "--no-backtest"]
    )
    assert result.exit_code == 0, result.output
    assert "max_sharpe" in result.output and "9 eligible tokens" in result.output
    result = runner.invoke(app, ["portfolio", "report", "--run-date", str(RUN_DATE)])
    assert result.exit_code == 0, result.output
    assert "report written:" in result.output and "e-mail skipped" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["optimize", "--run-date", "2024-13-01"], "error: --run-date '2024-13-01' is not a date"),
        (["report", "--run-date", "2024-07-08"], "error: no portfolio run for 2024-07-08"),
        (["optimize", "--run-date", "2020-01-01"], "error: gold.daily_crypto_metrics has no daily"),
    ],
)
def test_cli_bad_input_is_one_red_line(stand_in_gold, portfolio_env, args, message):
    result = CliRunner().invoke(app, ["portfolio", *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_before_gold_is_built_says_what_to_run(warehouse_url, portfolio_env):
    result = CliRunner().invoke(app, ["portfolio", "optimize", "--run-date", str(RUN_DATE)])
    assert result.exit_code == 1
    assert "error: gold is not built yet" in result.output
    assert "crypto-analytics demo" in result.output and "Traceback" not in result.output


def test_forecast_expected_returns_need_the_forecasting_view(
    stand_in_gold, portfolio_env, monkeypatch
):
    monkeypatch.setenv("CRYPTO_PORTFOLIO__EXPECTED_RETURNS", "forecast")
    get_settings.cache_clear()
    with pytest.raises(NotEnoughData, match="gold.price_predictions does not exist yet"):
        _optimise(stand_in_gold)


def test_forecast_expected_returns_from_champion_predictions(
    stand_in_gold, portfolio_env, monkeypatch
):
    with connect(stand_in_gold) as conn:
        conn.execute(
            """
            create view gold.price_predictions as
            select * from (values
                ('BTC', date '2024-06-30', 7, 70000.0::float8, 'gbm', true),
                ('ETH', date '2024-06-30', 7, 1.0::float8, 'gbm', true),
                ('SOL', date '2024-06-30', 7, 1.0::float8, 'gbm', true),
                ('BTC', date '2024-06-30', 7, 1.0::float8, 'naive', false),
                ('BTC', date '2024-06-23', 7, 1.0::float8, 'gbm', true)
            ) as p(symbol, as_of_date, horizon_days, point, model, is_champion)
            cross join (select '3'::text as model_version) as v
            """
        )
    monkeypatch.setenv("CRYPTO_PORTFOLIO__EXPECTED_RETURNS", "forecast")
    get_settings.cache_clear()
    _optimise(stand_in_gold)
    with connect(stand_in_gold) as conn:
        inputs = store.load_inputs(conn, RUN_DATE)
        last_close = conn.execute(
            "select close from gold.daily_crypto_metrics where symbol = 'BTC' and date = %s",
            (RUN_DATE - timedelta(days=1),),
        ).fetchone()[0]
    assert inputs.symbols == ["BTC", "ETH", "SOL"]
    assert inputs.expected_returns["BTC"] == pytest.approx(
        ((70000.0 / last_close) ** (1 / 7) - 1) * 365
    )
    reasons = {e.symbol: e.reason for e in inputs.exclusions}
    assert reasons["DOGE"] == "no champion forecast (7-day horizon)"
