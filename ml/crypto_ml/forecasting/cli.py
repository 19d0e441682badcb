"""`crypto-analytics ml train|evaluate|predict|server`: forecasting by hand.

Mounted in crypto_analytics.cli. Only typer is imported here; torch, Prophet, scikit-learn and
MLflow are imported inside the commands, so `crypto-analytics --help` stays instant. Errors from
the platform's hierarchy become one red `error: ...` line and exit code 1.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from crypto_analytics.errors import CryptoAnalyticsError

app = typer.Typer(
    no_args_is_help=True,
    help="Forecasting: walk-forward backtest, training with MLflow tracking and registry, "
    "prediction refresh, and the MLflow UI.",
)

SymbolOpt = Annotated[
    list[str] | None,
    typer.Option("--symbol", help="Token symbol (repeatable); default: the whole universe."),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Use gold up to this day (YYYY-MM-DD); default: all of it."),
]
DemoOpt = Annotated[
    bool,
    typer.Option(
        "--demo",
        help="The reduced training of `make demo` (ml.demo: fewer folds and epochs, "
        "fewer boosting iterations and interval samples).",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"--as-of {value!r} is not a date (YYYY-MM-DD)") from None


def summary_table(metrics: Any) -> str:
    """Means over tokens of the pooled backtest metrics, per model and horizon (the README table)."""
    price = metrics.loc[(metrics["fold"] == 0) & metrics["mase"].notna()]
    columns = ["mase", "mape", "directional_accuracy", "coverage_80", "coverage_95", "width_80"]
    table = price.groupby(["model", "horizon_days"])[columns].mean()
    table["tokens"] = price.groupby(["model", "horizon_days"])["symbol"].nunique()
    lines = [
        f"{'model':<9}{'h':>4}{'tokens':>8}{'MASE':>8}{'MAPE %':>8}{'dir.acc':>9}"
        f"{'cov80':>7}{'cov95':>7}{'width80':>9}"
    ]
    for (model, horizon), row in table.iterrows():
        lines.append(
            f"{model:<9}{horizon:>4}{int(row['tokens']):>8}{row['mase']:>8.3f}{row['mape']:>8.2f}"
            f"{row['directional_accuracy']:>9.3f}{row['coverage_80']:>7.3f}"
            f"{row['coverage_95']:>7.3f}{row['width_80']:>9.3f}"
        )
    vol = metrics.loc[(metrics["fold"] == 0) & metrics["qlike"].notna()]
    if not vol.empty:
        lines.append("")
        lines.append(f"{'volatility':<12}{'h':>4}{'tokens':>8}{'QLIKE':>9}")
        for (model, horizon), group in vol.groupby(["model", "horizon_days"]):
            lines.append(
                f"{model:<12}{horizon:>4}{group['symbol'].nunique():>8}{group['qlike'].mean():>9.4f}"
            )
    return "\n".join(lines)


def _run(register: bool, symbol: list[str] | None, as_of: str | None, demo: bool) -> None:
    from tqdm import tqdm

    from crypto_analytics.config import get_settings
    from crypto_ml.forecasting.pipeline import (
        Plan,
        evaluate_training,
        load_evaluation,
        prepare_training,
        register_training,
        train_job,
    )

    settings = get_settings()
    try:
        plan_path = prepare_training(settings, as_of=_as_of(as_of), symbols=symbol, demo=demo)
        plan = Plan.load(plan_path)
        with tqdm(plan.jobs, desc="training" if register else "backtesting", unit="job") as bar:
            for job in bar:
                bar.set_postfix_str(job.label)
                train_job(plan_path, job.label, final_fit=register)
        evaluate_training(plan_path)
        typer.echo(summary_table(load_evaluation(plan_path).metrics))
        if register:
            typer.echo("logging to MLflow and registering...")
            summary = register_training(plan_path)
            typer.echo(
                f"registered {len(summary.versions)} versions; champion: {summary.champion} "
                f"(version {summary.champion_version}); {summary.reason}"
            )
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def evaluate(symbol: SymbolOpt = None, as_of: AsOfOpt = None, demo: DemoOpt = False) -> None:
    """Walk-forward backtest of every model on gold: metrics to gold.model_evaluation and printed.
    Nothing is registered."""
    _run(False, symbol, as_of, demo)


@app.command()
def train(
    symbol: SymbolOpt = None,
    as_of: AsOfOpt = None,
    demo: DemoOpt = False,
    predict_after: Annotated[
        bool, typer.Option("--predict/--no-predict", help="Refresh the forecasts afterwards.")
    ] = True,
) -> None:
    """Backtest, fit on everything, log to MLflow, register, decide the champion (then predict)."""
    _run(True, symbol, as_of, demo)
    if predict_after:
        predict(symbol=symbol, as_of=as_of)


@app.command()
def predict(symbol: SymbolOpt = None, as_of: AsOfOpt = None) -> None:
    """Forecasts from each token's newest close with the registry's newest models; drift check."""
    from tqdm import tqdm

    from crypto_ml.forecasting.pipeline import predict as refresh

    try:
        with tqdm(desc="loading models", unit="model") as bar:

            def loaded(family: str) -> None:
                bar.set_postfix_str(family)
                bar.update()

            summary = refresh(as_of=_as_of(as_of), symbols=symbol, progress=loaded)
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"{summary.predictions} price and {summary.volatility_forecasts} volatility forecasts as of "
        f"{summary.as_of} in {summary.seconds:.1f} s; champion: {summary.champion}; "
        f"{summary.skipped} tokens skipped (gold.forecast_skips)"
    )
    for check in summary.drift_checks:
        verdict = "DRIFT" if check["is_drift"] else "ok"
        ratio = check["error_ratio"]
        typer.echo(
            f"  drift {check['model']} h={check['horizon_days']}: {verdict} "
            f"({check['n_points']} points, ratio {ratio if ratio is None else round(ratio, 3)})"
        )


@app.command()
def server() -> None:
    """Serve the MLflow UI in the foreground (ml.mlflow.host:port, default :5000) on the
    warehouse server's `mlflow` database; artifacts under data/mlflow."""
    import os

    from crypto_analytics.config import get_settings
    from crypto_ml.mlflow_tracking import SERVER_ENV, server_command

    try:
        command = server_command(get_settings())
    except CryptoAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    os.execvpe(command[0], command, {**os.environ, **SERVER_ENV})
