"""The weekly portfolio DAG: its wiring, and a real run (dag.test) against Postgres on made-up
gold data, with the e-mail skipped (no SMTP configured) or sent to a local SMTP server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import DAGS_FOLDER, parse_dags

from crypto_analytics.config import get_settings
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
    "send_report_email",
]


@pytest.fixture(scope="module")
def portfolio_dag():
    bag = parse_dags(DAGS_FOLDER / "portfolio_optimization_dag.py")
    assert bag.import_errors == {}
    return bag.dags["portfolio_optimization"]


def test_weekly_on_monday_midnight_with_thin_chained_tasks(portfolio_dag):
    assert portfolio_dag.schedule == "0 0 * * 1"
    assert portfolio_dag.catchup is False and portfolio_dag.max_active_runs == 1
    assert set(portfolio_dag.task_dict) == set(TASKS)
    for upstream, downstream in zip(TASKS[:-2], TASKS[1:-1], strict=True):
        assert portfolio_dag.task_dict[downstream].upstream_task_ids == {upstream}
    assert portfolio_dag.task_dict["send_report_email"].upstream_task_ids == {
        "backtest_strategies",
        "build_rebalancing_report",
    }
    # Gold for Sunday lands minutes after midnight: the first task waits by retrying.
    assert portfolio_dag.task_dict["fetch_returns"].retries >= 3


@pytest.fixture
def dag_with_gold(portfolio_dag, warehouse_url, airflow_db, monkeypatch, tmp_path):
    prices = testdata.make_prices(
        testdata.DB_SYMBOLS, testdata.RUN_DATE.replace(year=2022), 730, seed=11, drift=0.0012
    )
    testdata.load_stand_in_gold(warehouse_url, prices)
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
