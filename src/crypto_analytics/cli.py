"""`crypto-analytics`: the command line for the warehouse, ingestion, replay and the demo.

Every command exits non-zero with a one-line reason on bad input or failed batches, so it can sit
in cron, CI or a Makefile without hiding failures.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from crypto_analytics.errors import CryptoAnalyticsError


class OneLineErrors(TyperGroup):
    """Any platform error a command (or a sub-app mounted here) lets escape ends as one red
    `error: ...` line and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CryptoAnalyticsError as exc:
            raise _fail(str(exc)) from None


app = typer.Typer(
    cls=OneLineErrors, no_args_is_help=True, add_completion=False, help=__doc__
)
db_app = typer.Typer(no_args_is_help=True, help="Warehouse set-up.")
app.add_typer(db_app, name="db")

# Sub-apps of the analytics package: typer only at import, their commands import the rest.
from crypto_ml.portfolio.cli import app as portfolio_app  # noqa: E402

app.add_typer(portfolio_app, name="portfolio")

# The real-time stream and the alert engine (typer only at import, like the sub-apps above).
from crypto_analytics.alerts.cli import app as alerts_app  # noqa: E402
from crypto_analytics.streaming.cli import stream  # noqa: E402

app.add_typer(alerts_app, name="alerts")
app.command()(stream)

log = logging.getLogger("crypto_analytics.cli")

SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        "-s",
        help="Source to use (repeatable): exchange, binance_archive, yahoo, coingecko, synthetic.",
    ),
]
SymbolOpt = Annotated[
    list[str] | None,
    typer.Option("--symbol", help="Token symbol (repeatable); default: the whole universe."),
]
IntervalOpt = Annotated[
    list[str] | None,
    typer.Option("--interval", "-i", help="Candle interval (repeatable), e.g. 1d, 1h."),
]
DatasetOpt = Annotated[
    list[str] | None,
    typer.Option("--dataset", "-d", help="ohlcv, market or orderbook (repeatable)."),
]


@app.callback()
def main(
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="-v: a log line per batch, -vv: debug."),
    ] = 0,
) -> None:
    # Quiet by default: progress bars and the closing summaries say what happened.
    logging.basicConfig(
        level={0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("urllib3", "ccxt", "yfinance", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from crypto_analytics.redaction import install_log_redaction

    install_log_redaction()


def _fail(message: str) -> typer.Exit:
    lines = (line.strip().removeprefix("- ") for line in message.splitlines())
    one_line = "; ".join(line for line in lines if line)
    typer.secho(f"error: {one_line}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _parse_time(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(
            f"{option} {value!r} is not a date or ISO timestamp (e.g. 2024-01-31 or 2024-01-31T12:00)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@db_app.command("init")
def db_init() -> None:
    """Create schemas bronze/silver/gold and the bronze tables; publish the token universe."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.migrations.runner import init_database
    from crypto_analytics.warehouse import connect, database_url

    try:
        settings = get_settings()
        with connect(database_url(settings)) as conn:
            applied = init_database(conn, settings)
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"migrations applied: {applied or 'none (up to date)'}; universe: {len(settings.tokens)} tokens"
    )


@db_app.command("url")
def db_url() -> None:
    """Print the warehouse URL (starting the embedded server when CRYPTO_DATABASE_URL is unset)."""
    from crypto_analytics.warehouse import database_url

    try:
        typer.echo(database_url())
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL (no effect on a server given by CRYPTO_DATABASE_URL)."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.warehouse import stop_embedded

    settings = get_settings()
    if settings.database_url is not None:
        raise _fail("CRYPTO_DATABASE_URL is set: the warehouse is not the embedded server")
    stop_embedded(settings)
    typer.echo("embedded PostgreSQL stopped")


def _run(requests: list, progress: bool) -> None:
    from crypto_analytics.ingestion.pipeline import ingest

    reports, failures = ingest(requests, progress=progress)
    inserted = sum(r["rows_inserted"] for r in reports)
    quarantined = sum(r["rows_quarantined"] for r in reports)
    typer.echo(
        f"{len(reports)} batches loaded: {inserted} rows inserted, {quarantined} quarantined"
    )
    if failures:
        for failure in failures:
            typer.secho(f"failed: {failure}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command()
def ingest(
    source: SourceOpt = None,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    dataset: DatasetOpt = None,
) -> None:
    """Fetch only what is new since each watermark and load it into bronze."""
    from crypto_analytics.ingestion.pipeline import plan_requests

    try:
        requests = plan_requests(
            sources=source, symbols=symbol, intervals=interval, datasets=dataset
        )
    except (CryptoAnalyticsError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _run(requests, progress=False)


@app.command()
def backfill(
    since: Annotated[str, typer.Option(help="Start of the range (inclusive), e.g. 2024-01-01.")],
    until: Annotated[
        str | None, typer.Option(help="End of the range (exclusive); default now.")
    ] = None,
    source: SourceOpt = None,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    dataset: DatasetOpt = None,
) -> None:
    """Fill a historical range, with a progress bar. Rows already in bronze are not duplicated."""
    from crypto_analytics.ingestion.pipeline import plan_requests

    start = _parse_time(since, "--since")
    end = _parse_time(until, "--until") if until else None
    try:
        requests = plan_requests(
            sources=source,
            symbols=symbol,
            intervals=interval,
            since=start,
            until=end,
            datasets=dataset,
        )
    except (CryptoAnalyticsError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _run(requests, progress=True)


@app.command()
def replay(
    source: Annotated[str | None, typer.Option(help="Only this source_api.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
) -> None:
    """Rebuild bronze from the raw lake, with no network."""
    from crypto_analytics.ingestion.pipeline import replay as replay_lake

    try:
        reports = replay_lake(source=source, dataset=dataset, progress=True)
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    inserted = sum(r["rows_inserted"] for r in reports)
    typer.echo(f"replayed {len(reports)} batches: {inserted} rows inserted")


@app.command()
def summary() -> None:
    """Print what bronze holds, per table and source, and the state of recent batches."""
    from crypto_analytics.reporting import bronze_summary

    try:
        typer.echo(bronze_summary())
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt(ctx: typer.Context) -> None:
    """Run any dbt command against the platform's warehouse, e.g. `crypto-analytics dbt build`.

    The dbt profile reads only environment variables; this fills them from CRYPTO_DATABASE_URL
    or the embedded server, so dbt always targets the same warehouse as ingestion.
    """
    from crypto_analytics.dbt_runner import run_dbt

    if not ctx.args:
        raise _fail("give a dbt command, e.g. `crypto-analytics dbt build --select silver+`")
    try:
        run_dbt(list(ctx.args))
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="Days of daily history to generate.")] = 730,
    hourly_days: Annotated[int, typer.Option(help="Days of hourly history to generate.")] = 60,
) -> None:
    """Offline end to end: init the warehouse, ingest the synthetic market, build silver and
    gold with dbt, print what landed."""
    from crypto_analytics.ingestion.pipeline import plan_requests

    db_init()
    now = datetime.now(UTC)
    try:
        requests = (
            plan_requests(
                sources=["synthetic"],
                intervals=["1d"],
                since=now - timedelta(days=days),
                until=now,
                datasets=["ohlcv", "market"],
            )
            + plan_requests(
                sources=["synthetic"],
                intervals=["1h"],
                since=now - timedelta(days=hourly_days),
                until=now,
                datasets=["ohlcv"],
            )
            + plan_requests(sources=["synthetic"], datasets=["orderbook"])
        )
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    _run(requests, progress=True)
    summary()
    from crypto_analytics.dbt_runner import run_dbt
    from crypto_analytics.reporting import layer_summary

    typer.echo("building silver and gold with dbt (models and tests)...")
    try:
        run_dbt(["build", "--quiet"])
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(layer_summary("silver"))
    typer.echo(layer_summary("gold"))

    from crypto_ml.portfolio.cli import run_optimize

    run_date = now.date()
    typer.echo(f"optimising the portfolio for {run_date} (strategies, frontier, backtest)...")
    try:
        for line in run_optimize(run_date):
            typer.echo(f"  {line}")
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="TCP port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option(help="Address to bind (0.0.0.0: every interface).")
    ] = "0.0.0.0",
) -> None:
    """Serve the Streamlit dashboard in the foreground (http://localhost:8501): gold only, as the
    read-only role dashboard_reader."""
    from crypto_analytics.dashboard_server import serve

    serve(port, address)


if __name__ == "__main__":
    app()
