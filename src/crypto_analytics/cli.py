"""`crypto-analytics`: the command line for the warehouse, ingestion, replay and the demo.

Every command exits non-zero with a one-line reason on bad input or failed batches, so it can sit
in cron, CI or a Makefile without hiding failures.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from crypto_analytics.config import SourcesConfig
from crypto_analytics.errors import CryptoAnalyticsError

if TYPE_CHECKING:
    from crypto_analytics.ingestion.pipeline import FetchRequest, Plan


class OneLineErrors(TyperGroup):
    """Any platform error a command (or a sub-app mounted here) lets escape ends as one red
    `error: ...` line and exit 1, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except CryptoAnalyticsError as exc:
            raise _fail(str(exc)) from None


app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="Warehouse set-up.")
app.add_typer(db_app, name="db")

# Sub-apps of the analytics package: typer only at import, their commands import the rest.
from crypto_ml.portfolio.cli import app as portfolio_app  # noqa: E402

app.add_typer(portfolio_app, name="portfolio")

from crypto_ml.forecasting.cli import app as ml_app  # noqa: E402

app.add_typer(ml_app, name="ml")

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
        # the sources are the settings' sources.<name> sections (see ingestion/sources/registry.py)
        help=f"Source to use (repeatable): {', '.join(SourcesConfig.model_fields)}.",
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
    from crypto_analytics.utc import parse_utc

    return parse_utc(value, option)


@db_app.command("init")
def db_init() -> None:
    """Create schemas bronze/silver/gold and the bronze tables; publish the token universe."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.migrations.runner import init_database
    from crypto_analytics.warehouse import connect, database_url

    settings = get_settings()
    with connect(database_url(settings)) as conn:
        applied = init_database(conn, settings)
    typer.echo(
        f"migrations applied: {applied or 'none (up to date)'}; universe: {len(settings.tokens)} tokens"
    )


@db_app.command("url")
def db_url() -> None:
    """Print the warehouse URL, password masked (starting the embedded server when
    CRYPTO_DATABASE_URL is unset)."""
    from crypto_analytics.redaction import redact
    from crypto_analytics.warehouse import database_url

    typer.echo(redact(database_url()))


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


def _announce_plan(planned: Plan) -> None:
    """Say, at default verbosity, what the plan leaves out and why, and what it found abandoned."""
    for skip in planned.skipped:
        typer.echo(f"skipped: {skip.describe()}")
    if planned.expired:
        typer.secho(
            f"marked {len(planned.expired)} abandoned batch(es) of earlier runs failed "
            "(their loads died without reporting)",
            fg=typer.colors.YELLOW,
            err=True,
        )


def _run(requests: list[FetchRequest], progress: bool) -> None:
    from crypto_analytics.ingestion.pipeline import ingest

    result = ingest(requests, progress=progress)
    typer.echo(
        f"{len(result.reports)} batches loaded: {result.rows_inserted} rows inserted, "
        f"{result.rows_quarantined} quarantined"
    )
    if result.failures:
        for failure in result.failures:
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
    from crypto_analytics.ingestion.pipeline import plan

    planned = plan(sources=source, symbols=symbol, intervals=interval, datasets=dataset)
    _announce_plan(planned)
    if not planned.requests:
        typer.echo("nothing new to fetch: every series is up to date with its last closed candle")
        return
    _run(planned.requests, progress=False)


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
    """Fill a historical range, with a progress bar. Rows already in bronze are not duplicated.

    Exits 1 when the window holds no closed candle (it lies in the future, or is shorter than
    one candle) or when nothing in it can be fetched (the reasons are printed)."""
    from crypto_analytics.ingestion.pipeline import plan

    start = _parse_time(since, "--since")
    end = _parse_time(until, "--until") if until else None
    planned = plan(
        sources=source, symbols=symbol, intervals=interval, since=start, until=end, datasets=dataset
    )
    _announce_plan(planned)
    _run(planned.requests, progress=True)


@app.command()
def replay(
    source: Annotated[str | None, typer.Option(help="Only this source_api.")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Only this dataset: ohlcv, market or orderbook.")
    ] = None,
) -> None:
    """Rebuild bronze from the raw lake, with no network.

    Every good batch is loaded (each reload audited on its own row); a corrupt or missing lake
    file costs only its own batch, which is audited as failed and named here; exits 1 if any."""
    from crypto_analytics.ingestion.pipeline import replay as replay_lake

    report = replay_lake(source=source, dataset=dataset, progress=True)
    typer.echo(f"replayed {len(report.loaded)} batches: {report.rows_inserted} rows inserted")
    if report.bad:
        for bad in report.bad:
            typer.secho(f"failed: {bad.manifest}: {bad.error}", fg=typer.colors.RED, err=True)
        raise _fail(f"{len(report.bad)} lake batch(es) could not be loaded (listed above)")


@app.command()
def summary() -> None:
    """Print what bronze holds, per table and source, and the state of recent batches (loads
    that died without reporting are marked failed first)."""
    from crypto_analytics.reporting import bronze_summary

    typer.echo(bronze_summary())


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
    analytics: Annotated[
        bool,
        typer.Option(
            "--analytics/--no-analytics",
            help="Then train forecasters (reduced), optimise a portfolio and evaluate alerts.",
        ),
    ] = True,
) -> None:
    """Offline end to end: init the warehouse, ingest the synthetic market, build silver and
    gold with dbt, print what landed; then the analytics half on that gold (forecasts, one
    portfolio optimisation, one alert pass)."""
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

    if analytics:
        _demo_analytics(now.date())


def _demo_analytics(run_date: date) -> None:
    """The analytics half on the demo's gold: forecasts, one portfolio run, one alert pass.

    A step that gold holds too little history for (a short `--days`) is skipped with its reason;
    the data half the demo built is still there and usable.
    """
    from crypto_ml.errors import NotEnoughData
    from crypto_ml.forecasting.cli import train as ml_train
    from crypto_ml.portfolio.cli import run_optimize

    # Reduced (ml.demo: 2 folds of 14 days, 3 LSTM epochs, 40 boosting iterations), so the demo
    # ends with forecasts for the whole universe in minutes.
    typer.echo("forecasting: reduced training (ml.demo), MLflow registry, predictions...")
    ml_train(symbol=None, as_of=None, demo=True, predict_after=True)
    typer.echo(f"optimising the portfolio for {run_date} (strategies, frontier, backtest)...")
    try:
        for line in run_optimize(run_date):
            typer.echo(f"  {line}")
    except NotEnoughData as exc:
        typer.echo(f"  portfolio skipped: {exc}")
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    from crypto_analytics.alerts.cli import evaluate_command

    typer.echo("alerts: every rule of config/alerts.yaml on the demo's gold (no notifications)...")
    evaluate_command(deliver=False)


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
