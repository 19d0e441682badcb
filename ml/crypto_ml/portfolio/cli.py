"""`crypto-analytics portfolio optimize|report`: the weekly run by hand.

Mounted in crypto_analytics.cli; nothing heavy is imported until a command runs. Errors from the
platform's hierarchy become one red `error: ...` line and exit code 1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from crypto_analytics.errors import CryptoAnalyticsError

app = typer.Typer(
    no_args_is_help=True,
    help="Portfolio optimisation: max-Sharpe, min-volatility, HRP, equal weight, frontier, "
    "Monte Carlo, backtest, and the rebalancing report.",
)

RunDateOpt = Annotated[
    str | None,
    typer.Option(
        "--run-date",
        help="Run date (YYYY-MM-DD); data before it is used. Default: today (UTC).",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def parse_run_date(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"--run-date {value!r} is not a date (YYYY-MM-DD)") from None


def run_optimize(run_date: date, backtest: bool = True) -> list[str]:
    """Steps 1-5 of a run in one transaction; the summary lines to print."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.warehouse import connect
    from crypto_ml.portfolio import store
    from crypto_ml.portfolio.pipeline import optimise_run, summary_lines

    settings = get_settings()
    with connect() as conn:
        results = optimise_run(conn, run_date, settings, backtest=backtest)
        lines = summary_lines(results, store.load_inputs(conn, run_date))
        if backtest:
            for m in store.load_backtest_metrics(conn, run_date):
                sharpe = f"{m.sharpe:.2f}" if m.sharpe is not None else "n/a"
                lines.append(
                    f"backtest {m.strategy:15s} {m.start_date} to {m.end_date}: total "
                    f"{m.total_return:8.1%}  CAGR {m.cagr:7.1%}  Sharpe {sharpe}  max drawdown "
                    f"{m.max_drawdown:6.1%}"
                )
    return lines


@app.command("optimize")
def optimize(
    run_date: RunDateOpt = None,
    backtest: Annotated[
        bool, typer.Option("--backtest/--no-backtest", help="Also run the walk-forward backtest.")
    ] = True,
) -> None:
    """Optimise from gold returns before the run date and store the run (rerunnable: a rerun
    replaces the date's rows)."""
    when = parse_run_date(run_date)
    try:
        lines = run_optimize(when, backtest)
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"portfolio run {when}:")
    for line in lines:
        typer.echo(f"  {line}")


@app.command("report")
def report(
    run_date: RunDateOpt = None,
    holdings: Annotated[
        Path | None,
        typer.Option(help="Holdings file; default portfolio.rebalancing.holdings_file."),
    ] = None,
    send: Annotated[
        bool,
        typer.Option(
            "--send/--no-send",
            help="E-mail the report when SMTP is configured (skipped with a notice otherwise).",
        ),
    ] = True,
) -> None:
    """Write the rebalancing report of a stored run (HTML, Markdown, chart) and e-mail it."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.warehouse import connect
    from crypto_ml.portfolio.pipeline import build_report, send_report

    when = parse_run_date(run_date)
    settings = get_settings()
    try:
        with connect() as conn:
            path = build_report(conn, when, settings, holdings)
            conn.commit()
            typer.echo(f"report written: {path} (and report.md, frontier.png beside it)")
            if send:
                outcome = send_report(conn, when, settings)
                colour = typer.colors.GREEN if outcome.status == "sent" else typer.colors.YELLOW
                typer.secho(f"e-mail {outcome.status}: {outcome.detail}", fg=colour)
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
