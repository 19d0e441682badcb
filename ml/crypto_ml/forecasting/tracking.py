"""One MLflow run per model family and training: params, metrics, model card, plot, model.

Runs go to the family's experiment (crypto-forecast-<family>, crypto-volatility-garch). Each
holds the training's parameters, the backtest metrics per horizon (means over tokens of the
pooled folds), fit and predict times, a Markdown model card (data window, folds, metrics, skips,
known limits), a forecast plot, the backtest metrics as CSV, and the fitted family as a pyfunc
model with a signature and an input example. Prophet adds a nested run per token with its native
`mlflow.prophet` model, the LSTM its network as `mlflow.pytorch`. pip requirements are passed
explicitly: resolving them costs seconds per model (STACK.md).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from crypto_ml.forecasting.backtest import Timing
from crypto_ml.forecasting.folds import Fold
from crypto_ml.forecasting.policy import Skip
from crypto_ml.forecasting.pyfunc import (
    Bundle,
    EnsembleForecaster,
    PriceForecaster,
    VolatilityForecaster,
    save_bundle,
)

log = logging.getLogger(__name__)

#: What each family cannot do, for its model card.
KNOWN_LIMITS: dict[str, str] = {
    "naive": "No view of the future beyond the last close; intervals assume every token's past "
    "h-day moves known at the fit (whole history, pooled; a stablecoin's own), in units of the "
    "volatility at their start and scaled by today's, repeat, and that their shape is the same "
    "for every token and year: a volatility regime change inside the horizon is not foreseen, "
    "and coverage holds on average over tokens, not for each token.",
    "drift": "Extrapolates the last year's average move, which in crypto is mostly noise; "
    "same interval assumption as naive.",
    "prophet": "A smooth trend plus weekly/yearly seasonality on log price: crypto has little "
    "seasonality and its trend changes are not predictable; re-anchored to the last close; "
    "intervals are naive's empirical ones around its point, widened by its error ratio to naive "
    "on the backtest, so a trend that misses by more than it did there shifts them.",
    "lstm": "One global network on 2 input channels (scaled returns, gap mask): no exogenous "
    "data; per-token scale fixed at training, so a volatility regime change widens errors "
    "until the next training.",
    "gbm": "Pooled across tokens on scale-free features; quantiles fitted separately and "
    "sorted, then widened by a correction measured on a held-out recent window (CQR); no "
    "interval where the history is too short for that window; a feature mart change "
    "(indicators) changes the model's inputs.",
    "ensemble": "Weights and conformal radii come from the backtest folds; where those span "
    "fewer than ml.min_calibration_periods horizons (30 days ahead with 6 folds) the radii "
    "are the random walk's errors widened by the ensemble's mean error ratio to naive on the "
    "same validation points (never narrowed); coverage holds on average over "
    "tokens, not for each token; pegged tokens get the baselines' forecasts only.",
    "garch": "GARCH(1,1) with normal errors: fat tails are under-weighted; parameters refitted "
    "nightly and filtered with new returns at each refresh.",
}


def pip_requirements() -> list[str]:
    packages = ["mlflow", "pandas", "numpy", "scikit-learn", "torch", "prophet", "arch"]
    return [f"{p}=={version(p)}" for p in packages]


@dataclass(frozen=True)
class LoggedRun:
    family: str
    run_id: str
    model_uri: str


def horizon_metrics(evaluation: pd.DataFrame, family: str) -> dict[str, float]:
    """Means over tokens of the pooled (fold 0) metrics, per horizon: mase_h7, coverage_80_h30, ..."""
    rows = evaluation.loc[(evaluation["model"] == family) & (evaluation["fold"] == 0)]
    out: dict[str, float] = {}
    columns = [
        "mase", "mape", "directional_accuracy", "coverage_80", "coverage_95", "width_80",
        "width_95", "interval_score_80", "interval_score_95", "pinball", "qlike",
    ]  # fmt: skip
    for _, group in rows.groupby("horizon_days"):
        horizon = int(group["horizon_days"].iloc[0])
        for column in columns:
            if column in group and group[column].notna().any():
                out[f"{column}_h{horizon}"] = float(group[column].mean())
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table of a small frame (index as the first column)."""
    header = [str(frame.index.name or ""), *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index), *(f"{v:.4g}" for v in row)]) + " |")
    return "\n".join(lines)


def model_card(
    family: str,
    as_of: pd.Timestamp,
    window: tuple[pd.Timestamp, pd.Timestamp],
    plan: list[Fold],
    evaluation: pd.DataFrame,
    skips: list[Skip],
    n_tokens: int,
    timing: Timing,
) -> str:
    rows = evaluation.loc[(evaluation["model"] == family) & (evaluation["fold"] == 0)]
    metrics = [
        c
        for c in (
            "mase",
            "mape",
            "directional_accuracy",
            "coverage_80",
            "coverage_95",
            "width_80",
            "width_95",
            "qlike",
        )  # fmt: skip
        if c in rows and rows[c].notna().any()
    ]
    table = rows.groupby("horizon_days")[metrics].mean().round(4) if metrics else pd.DataFrame()
    cutoffs = ", ".join(str(f.cutoff.date()) for f in plan)
    lines = [
        f"# {family}: model card",
        "",
        f"- As of: {as_of.date()} (newest close in gold)",
        f"- Data window: {window[0].date()} to {window[1].date()}",
        f"- Tokens fitted: {n_tokens}; skipped: {len(skips)}",
        f"- Walk-forward backtest: {len(plan)} folds (expanding window), cut-offs {cutoffs}; "
        f"each fold forecasts from every day up to {plan[-1].last_origin.date() if plan else '-'}",
        f"- Fit {timing.fit_seconds:.1f} s over {timing.fits} fits, predict "
        f"{timing.predict_seconds:.1f} s",
        "",
        "## Backtest metrics (means over tokens, all folds pooled)",
        "",
        "MASE below 1 beats the random walk; coverage goal: nominal ± 0.05.",
        "",
        markdown_table(table) if not table.empty else "(no scored forecasts)",
        "",
        "## Skipped tokens",
        "",
        *([f"- {s.symbol}: {s.reason}" for s in skips] or ["- none"]),
        "",
        "## Known limits",
        "",
        KNOWN_LIMITS.get(family, "-"),
        "",
    ]
    return "\n".join(lines)


def forecast_figure(
    symbol: str, history: pd.Series, backtest: pd.DataFrame, final: pd.DataFrame, title: str
) -> Any:
    """Close of the last 180 days, the backtest's 7-day point forecasts on their target days, and
    the production forecast with its 80/95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(10, 4.5))
    recent = history.dropna().iloc[-180:]
    axis.plot(recent.index, recent.to_numpy(), color="black", linewidth=1, label="close")
    if not backtest.empty:
        week = backtest.loc[
            (backtest["horizon"] == 7) & (backtest["target_date"] >= recent.index[0])
        ]
        axis.plot(week["target_date"], np.exp(week["point"]), ".", markersize=3,
                  label="backtest, 7 days ahead")  # fmt: skip
    if not final.empty:
        axis.errorbar(
            final["target_date"], final["point"],
            yerr=[final["point"] - final["lower_95"], final["upper_95"] - final["point"]],
            fmt="o", color="tab:red", capsize=4, label="forecast, 95 % interval",
        )  # fmt: skip
    axis.set_title(title)
    axis.legend(loc="upper left")
    figure.autofmt_xdate()
    return figure


def log_family_run(
    *,
    experiment_id: str,
    family: str,
    kind: str,
    bundle: Bundle,
    as_of: pd.Timestamp,
    params: dict[str, Any],
    evaluation: pd.DataFrame,
    card: str,
    figure: Any | None,
    input_example: pd.DataFrame,
    output_example: pd.DataFrame,
    timing: Timing,
    native: Any | None = None,
) -> LoggedRun:
    """Log one family's training as a run; `native(run)` adds flavour-specific models."""
    from mlflow.models import infer_signature

    python_model: PriceForecaster | EnsembleForecaster | VolatilityForecaster
    if kind == "ensemble":
        python_model = EnsembleForecaster()
    elif kind == "volatility":
        python_model = VolatilityForecaster()
    else:
        python_model = PriceForecaster()
    # MLflow hints about integer columns (ours never hold missing values) and about pickling our
    # own object; torch.export (the pytorch flavour) warns about LSTM weights: all expected.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    with (
        warnings.catch_warnings(),
        mlflow.start_run(experiment_id=experiment_id, run_name=f"{family} {as_of.date()}") as run,
    ):
        warnings.simplefilter("ignore", UserWarning)
        mlflow.set_tags({"crypto.family": family, "crypto.as_of": str(as_of.date())})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        metrics = horizon_metrics(evaluation, family)
        metrics.update(
            fit_seconds=timing.fit_seconds,
            predict_seconds=timing.predict_seconds,
            fits=float(timing.fits),
        )
        mlflow.log_metrics(metrics)
        mlflow.log_text(card, "model_card.md")
        mine = evaluation.loc[evaluation["model"] == family]
        mlflow.log_text(mine.to_csv(index=False), "backtest_metrics.csv")
        if figure is not None:
            mlflow.log_figure(figure, f"forecast_{family}.png")
        with tempfile.TemporaryDirectory() as folder:
            path = save_bundle(bundle, str(Path(folder) / "fitted.pkl"))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                artifacts={"fitted": path},
                signature=infer_signature(input_example, output_example),
                input_example=input_example,
                pip_requirements=pip_requirements(),
            )
        if native is not None:
            native(run)
        log.info("logged %s run %s", family, run.info.run_id)
        return LoggedRun(family, run.info.run_id, info.model_uri)
