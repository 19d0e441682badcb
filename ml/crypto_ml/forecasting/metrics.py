"""Forecast accuracy, interval calibration and volatility loss, per model, token, horizon and fold.

Input rows are scored forecasts: a forecast frame (log prices) plus `model`, `fold` and `y`, the
realised log close of the target day (rows without one are not scored). Point errors are in
prices (what a user reads); interval and quantile scores are on log prices, so they compare
across tokens. Definitions:
- MAE, RMSE in price units; MAPE in percent of the realised close;
- MASE = MAE / the naive forecast's MAE on the same points (1 = the random walk, < 1 beats it);
- directional accuracy: the share of points where the forecast change from the origin's close
  has the sign of the realised change, leaving out points with no forecast change (so it is
  undefined for naive);
- coverage_c: the share of realised closes inside the central c % interval; width_c: mean
  interval width relative to the origin's close;
- interval score (Gneiting & Raftery 2007): (u - l) + 2/α·(l - y)⁺ + 2/α·(y - u)⁺, α = 1 - c;
- pinball: mean quantile loss over the 2.5/10/50/90/97.5 % quantiles;
- QLIKE (volatility, Patton 2011): RV/F - ln(RV/F) - 1, RV the realised h-day variance, F the
  forecast; robust to noise in the realised-variance proxy, 0 when F = RV.
Fold 0 pools every fold (a ratio of sums for MASE, not a mean of fold ratios).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from crypto_ml.forecasting.forecasts import INTERVALS, QUANTILE_LEVELS

GROUP = ["model", "symbol", "horizon", "fold"]
POINT_KEY = ["symbol", "origin", "horizon"]
PRICE_METRICS = [
    "n_points", "mae", "rmse", "mape", "mase", "directional_accuracy", "coverage_80",
    "coverage_95", "width_80", "width_95", "interval_score_80", "interval_score_95", "pinball",
]  # fmt: skip


def interval_score(
    lower: np.ndarray, upper: np.ndarray, y: np.ndarray, coverage: int
) -> np.ndarray:
    alpha = 1 - coverage / 100
    below = np.maximum(lower - y, 0)
    above = np.maximum(y - upper, 0)
    return (upper - lower) + 2 / alpha * below + 2 / alpha * above


def pinball_loss(quantiles: dict[float, np.ndarray], y: np.ndarray) -> np.ndarray:
    """Mean over the given levels of the quantile loss at each row."""
    losses = []
    for level, q in quantiles.items():
        error = y - q
        losses.append(np.maximum(level * error, (level - 1) * error))
    return np.mean(losses, axis=0)


def _row_terms(scored: pd.DataFrame) -> pd.DataFrame:
    rows = scored.loc[np.isfinite(scored["y"].to_numpy())].copy()
    price, actual, base = np.exp(rows["point"]), np.exp(rows["y"]), np.exp(rows["base"])
    rows["abs_error"] = np.abs(price - actual)
    rows["sq_error"] = (price - actual) ** 2
    rows["pct_error"] = 100 * rows["abs_error"] / actual
    forecast_move = np.sign(rows["point"] - rows["base"])
    rows["direction_hit"] = np.where(
        forecast_move != 0,
        (forecast_move == np.sign(rows["y"] - rows["base"])).astype(float),
        np.nan,
    )
    y = rows["y"].to_numpy()
    for coverage, (lower, upper) in INTERVALS.items():
        lo, hi = rows[lower].to_numpy(), rows[upper].to_numpy()
        known = np.isfinite(lo) & np.isfinite(hi)
        rows[f"inside_{coverage}"] = np.where(known, ((lo <= y) & (y <= hi)).astype(float), np.nan)
        rows[f"width_{coverage}"] = np.where(known, (np.exp(hi) - np.exp(lo)) / base, np.nan)
        rows[f"interval_score_{coverage}"] = np.where(
            known, interval_score(lo, hi, y, coverage), np.nan
        )
    quantiles = {level: rows[column].to_numpy() for column, level in QUANTILE_LEVELS.items()}
    known = np.all([np.isfinite(q) for q in quantiles.values()], axis=0)
    rows["pinball"] = np.where(known, pinball_loss(quantiles, y), np.nan)
    naive = rows.loc[rows["model"] == "naive", [*POINT_KEY, "abs_error"]]
    rows = rows.merge(
        naive.rename(columns={"abs_error": "naive_abs_error"}), on=POINT_KEY, how="left"
    )
    rows["abs_error_vs_naive"] = np.where(
        rows["naive_abs_error"].notna(), rows["abs_error"], np.nan
    )
    return rows


def _aggregate(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    grouped = rows.groupby(by, sort=True)
    out = grouped.agg(
        n_points=("abs_error", "size"),
        mae=("abs_error", "mean"),
        mse=("sq_error", "mean"),
        mape=("pct_error", "mean"),
        model_abs=("abs_error_vs_naive", "mean"),
        naive_abs=("naive_abs_error", "mean"),
        directional_accuracy=("direction_hit", "mean"),
        coverage_80=("inside_80", "mean"),
        coverage_95=("inside_95", "mean"),
        width_80=("width_80", "mean"),
        width_95=("width_95", "mean"),
        interval_score_80=("interval_score_80", "mean"),
        interval_score_95=("interval_score_95", "mean"),
        pinball=("pinball", "mean"),
    )
    out["rmse"] = np.sqrt(out.pop("mse"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mase"] = out.pop("model_abs") / out.pop("naive_abs")
    out["mase"] = out["mase"].replace([np.inf, -np.inf], np.nan)
    return out.reset_index()


def evaluate_forecasts(scored: pd.DataFrame) -> pd.DataFrame:
    """Metrics per (model, symbol, horizon, fold) plus fold 0 (all folds pooled)."""
    rows = _row_terms(scored)
    if rows.empty:
        return pd.DataFrame(columns=[*GROUP, *PRICE_METRICS])
    per_fold = _aggregate(rows, GROUP)
    pooled = _aggregate(rows, ["model", "symbol", "horizon"]).assign(fold=0)
    return pd.concat([per_fold, pooled], ignore_index=True).loc[:, [*GROUP, *PRICE_METRICS]]


def qlike(realised: ArrayLike, forecast: ArrayLike) -> np.ndarray:
    """RV/F - ln(RV/F) - 1; NaN unless both are positive."""
    realised, forecast = np.asarray(realised, float), np.asarray(forecast, float)
    ok = (realised > 0) & (forecast > 0)
    ratio = np.where(ok, realised / np.where(ok, forecast, 1), np.nan)
    return ratio - np.log(ratio) - 1


def evaluate_volatility(scored: pd.DataFrame) -> pd.DataFrame:
    """QLIKE per (model, symbol, horizon, fold) and fold 0, from rows with `realised` and
    `variance_h`."""
    rows = scored.assign(qlike=qlike(scored["realised"], scored["variance_h"]))
    rows = rows.loc[np.isfinite(rows["qlike"].to_numpy())]
    if rows.empty:
        return pd.DataFrame(columns=[*GROUP, "n_points", "qlike"])
    per_fold = rows.groupby(GROUP).agg(n_points=("qlike", "size"), qlike=("qlike", "mean"))
    pooled = rows.groupby(["model", "symbol", "horizon"]).agg(
        n_points=("qlike", "size"), qlike=("qlike", "mean")
    )
    pooled = pooled.reset_index().assign(fold=0)
    return pd.concat([per_fold.reset_index(), pooled], ignore_index=True).loc[
        :, [*GROUP, "n_points", "qlike"]
    ]


def validation_mae(scored: pd.DataFrame, model: str) -> dict[int, float]:
    """Mean |forecast - realised| on log prices per horizon, pooled over tokens and folds: what
    the drift check compares the champion's live errors with."""
    rows = scored.loc[(scored["model"] == model) & np.isfinite(scored["y"].to_numpy())]
    errors = (rows["point"] - rows["y"]).abs()
    return {int(h): float(v) for h, v in errors.groupby(rows["horizon"]).mean().items()}


def common_point_scores(scored: pd.DataFrame, models: list[str]) -> tuple[dict[str, float], int]:
    """Mean MASE over (token, horizon) for each model, on the points every one of `models` and
    naive forecast and that have a realised close. Returns (scores, number of points)."""
    wanted = sorted({*models, "naive"})
    rows = scored.loc[scored["model"].isin(wanted) & np.isfinite(scored["y"].to_numpy())]
    rows = rows.assign(abs_error=np.abs(np.exp(rows["point"]) - np.exp(rows["y"])))
    wide = rows.pivot_table(index=POINT_KEY, columns="model", values="abs_error", aggfunc="first")
    wide = wide.reindex(columns=wanted).dropna()
    if wide.empty:
        return {}, 0
    sums = wide.groupby(level=["symbol", "horizon"]).sum()
    naive = sums["naive"].replace(0, np.nan)
    scores = {m: float((sums[m] / naive).mean()) for m in wanted}
    return scores, len(wide)
