"""
### Portfolio optimisation: weekly target weights, backtest and an e-mailed rebalancing report

Every **Monday 00:00 UTC** (the run date is the Monday; only data dated before it is used):

1. `fetch_returns`: gold daily returns over `portfolio.window_days`, eligibility with reasons
   (stablecoin policy, short histories, gaps); the run's exact returns and settings are stored in
   `portfolio.runs`/`portfolio.run_returns`. It waits (retries every 10 minutes) until gold
   holds the day before the run date, since Sunday's candles land a few minutes after midnight.
2. `estimate_covariance`: expected returns (mean, EMA or champion forecasts) and the covariance
   (sample or Ledoit-Wolf), annualised with 365 days, stored as the run's inputs.
3. `simulate_portfolios`: the Monte Carlo cloud (10,000 random long-only portfolios), a sample
   stored for display.
4. `optimise_portfolios`: max-Sharpe (exact; min-volatility flagged as a fallback when every
   expected return is at or below the risk-free rate), min-volatility, HRP, equal weight, their
   risk metrics, and the efficient frontier.
5. `backtest_strategies`: the walk-forward weekly backtest against equal weight and BTC.
6. `build_rebalancing_report`: trades for `config/holdings.yaml` within the threshold bands;
   the report (HTML, Markdown, chart) is written under `data/reports/portfolio_<run date>/`.
7. `build_portfolio_views`: gold's portfolio views built and tested by dbt over what the run
   stored (`crypto_analytics.dbt_runner.build_result_views`; the 15-minute gold build leaves
   them out), so a report is only e-mailed once its data passed its tests.
8. `send_report_email`: e-mails it over SMTP (`notifications.smtp`, password `SMTP_PASSWORD`).
   With no SMTP host or recipients configured the task is **skipped** with the reason; a failed
   send **fails the task** (after its retries) and the report stays on disk.

XCom carries only the run date: every step reads what the previous one stored in the `portfolio`
schema, and writes its own rows in one transaction, replacing the run date's rows, so a rerun or a
retry never duplicates. Gold views (`gold.portfolio_weights_optimized`, `efficient_frontier`,
`monte_carlo_portfolios`, `portfolio_backtest`, `rebalancing_recommendations`) show the results
as soon as each step commits. Param `run_date` (YYYY-MM-DD) recomputes a past week.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from crypto_analytics.contract import (
    DAG_START_DATE,
    DEFAULT_TASK_ARGS,
    PORTFOLIO_SCHEDULE,
    PORTFOLIO_VIEWS,
)

log = logging.getLogger(__name__)


def _run_date(value: str) -> Any:
    from datetime import date

    return date.fromisoformat(value)


def _step(name: str, run_date: str, **kwargs: Any) -> Any:
    """Run one step of crypto_ml.portfolio.pipeline in its own transaction."""
    from crypto_ml.portfolio import pipeline

    from crypto_analytics.config import get_settings
    from crypto_analytics.warehouse import connect

    settings = get_settings()
    with connect() as conn:
        return getattr(pipeline, name)(conn, _run_date(run_date), settings, **kwargs)


@dag(
    schedule=PORTFOLIO_SCHEDULE,
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    doc_md=__doc__,
    tags=["portfolio", "analytics"],
    default_args=DEFAULT_TASK_ARGS,
    params={
        "run_date": Param(
            None,
            type=["null", "string"],
            description="Run date YYYY-MM-DD (data before it is used); empty = the logical date",
        ),
    },
)
def portfolio_optimization() -> None:
    @task(retries=6, retry_delay=timedelta(minutes=10))
    def fetch_returns(params: dict[str, Any] | None = None) -> str:
        """Read gold returns for the window and store the run; returns the run date."""
        context = get_current_context()
        chosen = (params or {}).get("run_date")
        if chosen:
            run_date = _run_date(chosen).isoformat()
            fresh = False
        else:
            logical = context.get("logical_date") or context["dag_run"].run_after
            run_date = logical.astimezone(UTC).date().isoformat()
            fresh = True
        eligible = _step("fetch_returns", run_date, require_fresh=fresh)
        log.info("portfolio run %s: %d eligible tokens", run_date, eligible)
        return run_date

    @task
    def estimate_covariance(run_date: str) -> str:
        """Expected returns and covariance from the stored returns."""
        _step("estimate_inputs", run_date)
        return run_date

    @task
    def simulate_portfolios(run_date: str) -> str:
        """The Monte Carlo cloud for the frontier picture."""
        _step("simulate_portfolios", run_date)
        return run_date

    @task
    def optimise_portfolios(run_date: str) -> str:
        """Every strategy, its risk metrics and the efficient frontier."""
        _step("optimise_portfolios", run_date)
        return run_date

    @task
    def backtest_strategies(run_date: str) -> str:
        """The walk-forward weekly backtest."""
        _step("backtest_strategies", run_date)
        return run_date

    @task
    def build_rebalancing_report(run_date: str) -> str:
        """Trades for the holdings file and the report files; returns the report's path."""
        return str(_step("build_report", run_date))

    @task
    def send_report_email(run_date: str, report_path: str) -> str:
        """E-mail the report; skipped (with the reason) when e-mail is not configured."""
        from airflow.sdk.exceptions import AirflowSkipException

        outcome = _step("send_report", run_date)
        if outcome.status == "skipped":
            raise AirflowSkipException(outcome.detail)
        log.info("report %s %s", report_path, outcome.detail)
        return outcome.status

    @task
    def build_portfolio_views() -> dict[str, Any]:
        """Build and test gold's portfolio views over the run's stored results."""
        from dataclasses import asdict

        from crypto_analytics.dbt_runner import build_result_views

        return asdict(build_result_views(PORTFOLIO_VIEWS))

    run_date = fetch_returns()
    estimated = estimate_covariance(run_date)
    simulated = simulate_portfolios(estimated)
    optimised = optimise_portfolios(simulated)
    backtested = backtest_strategies(optimised)
    report = build_rebalancing_report(backtested)
    report >> build_portfolio_views() >> send_report_email(backtested, report)


portfolio_optimization()
