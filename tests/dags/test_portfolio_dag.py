"""The weekly portfolio DAG: its wiring, and a real run (dag.test) against Postgres on made-up
gold data, with the e-mail skipped (no SMTP configured) or sent to a local SMTP server."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.contract import PORTFOLIO_DAG_ID
from crypto_analytics.warehouse import connect

_TESTDATA = Path(__file__).resolve().parents[1] / "ml" / "portfolio" / "portfolio_testdata.py"
_spec = importlib.util.spec_from_file_location("portfolio_testdata", _TESTDATA)
assert _spec and _spec.loader
testdata = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(testdata)

TASKS = [
    "fetch_returns",
    "estimate_covariance",
    "simulate_portfolios",
    "optimise_portfolios",
    "backtest_strategies",
    "build_rebalancing_report",
    "build_portfolio_views",
    "send_report_email",
]


@pytest.fixture(scope="module")
def portfolio_dag(dags_folder, dag_parser):
    bag = dag_parser(dags_folder / "portfolio_optimization_dag.py")
    assert bag.import_errors == {}
    return bag.dags[PORTFOLIO_DAG_ID]


def test_weekly_on_monday_midnight_with_thin_chained_tasks(portfolio_dag):
    from crypto_analytics.contract import PORTFOLIO_SCHEDULE

    assert portfolio_dag.schedule == PORTFOLIO_SCHEDULE == "0 0 * * 1"
    assert portfolio_dag.catchup is False and portfolio_dag.max_active_runs == 1
    assert set(portfolio_dag.task_dict) == set(TASKS)
    for upstream, downstream in zip(TASKS[:-2], TASKS[1:-1], strict=True):
        assert portfolio_dag.task_dict[downstream].upstream_task_ids == {upstream}
    # the report goes out once gold's portfolio views over the run passed their dbt tests
    assert portfolio_dag.task_dict["send_report_email"].upstream_task_ids == {
        "backtest_strategies",
        "build_rebalancing_report",
        "build_portfolio_views",
    }
    assert [t.task_id for t in portfolio_dag.leaves] == ["send_report_email"]
    # Gold for Sunday lands minutes after midnight: the first task waits by retrying.
    assert portfolio_dag.task_dict["fetch_returns"].retries >= 3


@pytest.fixture
def dag_with_gold(portfolio_dag, warehouse_url, airflow_db, monkeypatch, tmp_path):
    prices = testdata.make_prices(
        testdata.DB_SYMBOLS, testdata.RUN_DATE.replace(year=2022), 730, seed=11, drift=0.0012
    )
    testdata.load_stand_in_gold(warehouse_url, prices)
    # silver's token universe, which the portfolio views' relationship tests read
    from crypto_analytics.dbt_runner import run_dbt

    run_dbt(["run", "--select", "+token_universe", "--quiet",
             "--target-path", str(tmp_path / "dbt_target")])  # fmt: skip
    monkeypatch.setenv("CRYPTO_PORTFOLIO__SYMBOLS", '["BTC","ETH","SOL","ADA","LINK","UNI","AAVE"]')
    monkeypatch.setenv("CRYPTO_PORTFOLIO__BACKTEST__LOOKBACK_DAYS", "60")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__MONTE_CARLO__PORTFOLIOS", "1000")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__REBALANCING__REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    for task in portfolio_dag.tasks:
        monkeypatch.setattr(task, "retries", 0)
    return portfolio_dag


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_without_smtp_stores_everything_and_skips_the_email(dag_with_gold, warehouse_url):
    run = dag_with_gold.test(run_conf={"run_date": str(testdata.RUN_DATE)})
    states = _states(run)
    assert states.pop("send_report_email") == "skipped"
    assert set(states.values()) == {"success"}, states
    with connect(warehouse_url) as conn:
        report_path, email_status, optimised = conn.execute(
            "select report_path, email_status, optimised_at is not null from portfolio.runs "
            "where run_date = %s",
            (testdata.RUN_DATE,),
        ).fetchone()
        strategies = conn.execute("select count(*) from portfolio.strategies").fetchone()[0]
        backtest = conn.execute(
            "select count(distinct strategy) from portfolio.backtest"
        ).fetchone()
    assert optimised and email_status == "skipped"
    assert Path(report_path).is_file()
    assert strategies == 4 and backtest == (5,)


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_with_smtp_sends_the_report(dag_with_gold, smtp_server):
    run = dag_with_gold.test(run_conf={"run_date": str(testdata.RUN_DATE)})
    assert set(_states(run).values()) == {"success"}
    assert len(smtp_server.messages) == 1
    _, message = smtp_server.messages[0]
    assert message["Subject"].startswith(f"Portfolio rebalancing {testdata.RUN_DATE}")


OFFLINE_SYMBOLS = ["BTC", "ETH", "SOL", "DOGE", "LINK", "AAVE"]


@pytest.mark.integration
@pytest.mark.slow
def test_offline_source_to_gold_to_portfolio_views(
    portfolio_dag, warehouse_url, airflow_db, dbt_tests_since, monkeypatch, tmp_path
):
    """The whole path on the offline source: synthetic daily candles -> bronze -> dbt silver and
    gold -> the portfolio DAG (dag.test) -> the gold portfolio views, built and tested by dbt."""
    from datetime import UTC, datetime

    from crypto_analytics.dbt_runner import run_dbt
    from crypto_analytics.ingestion.pipeline import ingest, plan_requests

    run_date = testdata.RUN_DATE
    requests = plan_requests(
        sources=["synthetic"],
        symbols=OFFLINE_SYMBOLS,
        intervals=["1d"],
        datasets=["ohlcv"],
        since=datetime(2023, 5, 1, tzinfo=UTC),
        until=datetime.combine(run_date, datetime.min.time(), tzinfo=UTC),
    )
    ingest(requests)
    target = ["--target-path", str(tmp_path / "dbt_target"), "--indirect-selection", "cautious"]
    run_dbt(["build", "--select", "+daily_crypto_metrics", "+token_universe", "--quiet", *target])

    monkeypatch.setenv("CRYPTO_PORTFOLIO__SYMBOLS", '["' + '","'.join(OFFLINE_SYMBOLS) + '"]')
    monkeypatch.setenv("CRYPTO_PORTFOLIO__BACKTEST__LOOKBACK_DAYS", "90")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__MONTE_CARLO__PORTFOLIOS", "1000")
    monkeypatch.setenv("CRYPTO_PORTFOLIO__REBALANCING__REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    for task in portfolio_dag.tasks:
        monkeypatch.setattr(task, "retries", 0)
    started = datetime.now(UTC)
    run = portfolio_dag.test(run_conf={"run_date": str(run_date)})
    states = _states(run)
    assert states.pop("send_report_email") == "skipped"
    assert set(states.values()) == {"success"}, states  # build_portfolio_views included

    tested = dbt_tests_since(warehouse_url, started)
    assert {"portfolio_weights_optimized", "efficient_frontier", "monte_carlo_portfolios",
            "portfolio_backtest", "rebalancing_recommendations"} <= set(tested)  # fmt: skip
    assert set(tested.values()) == {"pass"}, tested
    with connect(warehouse_url) as conn:
        weights = conn.execute(
            "select strategy, count(*), sum(weight) from gold.portfolio_weights_optimized "
            "where run_date = %s group by strategy order by strategy",
            (run_date,),
        ).fetchall()
        views = {
            name: conn.execute(f"select count(*) from gold.{name}").fetchone()[0]
            for name in (
                "efficient_frontier",
                "monte_carlo_portfolios",
                "portfolio_backtest",
                "portfolio_backtest_summary",
                "rebalancing_recommendations",
            )
        }
        last_day = conn.execute(
            "select max(date) from portfolio.run_returns where run_date = %s", (run_date,)
        ).fetchone()[0]
    assert [w[0] for w in weights] == ["equal_weight", "hrp", "max_sharpe", "min_volatility"]
    for _, count, total in weights:
        assert count == len(OFFLINE_SYMBOLS) and total == pytest.approx(1, abs=1e-9)
    assert all(count > 0 for count in views.values()), views
    assert last_day == run_date - timedelta(days=1)
