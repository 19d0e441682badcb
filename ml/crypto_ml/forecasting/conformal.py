"""Split-conformal calibration of prediction intervals from validation residuals.

Given n exchangeable nonconformity scores (here |realised - forecast| / (sigma × sqrt(h)), a
forecast error in units of the token's recent volatility), the ⌈(n + 1)·c⌉-th smallest score is
a radius whose interval covers a new point with probability at least c (Vovk et al.; Angelopoulos
& Bates, "A Gentle Introduction to Conformal Prediction", 2021). With fewer than
1/(1 - c) - 1 scores no finite radius has that guarantee, and none is returned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from crypto_ml.forecasting.forecasts import INTERVALS, QUANTILE_LEVELS


def conformal_radius(scores: np.ndarray, coverage: float) -> float | None:
    """The split-conformal quantile of `scores` for `coverage` in (0, 1), or None if n is too small."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    finite = np.asarray(scores, dtype=float)
    finite = finite[np.isfinite(finite)]
    rank = math.ceil((len(finite) + 1) * coverage)
    if rank > len(finite):
        return None
    return float(np.partition(finite, rank - 1)[rank - 1])


def normalised_scores(
    realised: np.ndarray, forecast: np.ndarray, sigma: np.ndarray, horizon: np.ndarray
) -> np.ndarray:
    """|realised - forecast| / (sigma × sqrt(h)); NaN where sigma is missing or zero."""
    scale = np.asarray(sigma, dtype=float) * np.sqrt(np.asarray(horizon, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.abs(np.asarray(realised) - np.asarray(forecast)) / scale
    scores[~(scale > 0)] = np.nan
    return scores


def cqr_corrections(tails: Mapping[str, np.ndarray], realised: np.ndarray) -> dict[int, float]:
    """Conformalised quantile regression (Romano, Patterson & Candès, 2019): for each central
    interval (coverage percent -> its quantile columns), the split-conformal quantile Q of the
    scores max(lower - realised, realised - upper) on held-out rows; the interval
    [lower - Q, upper + Q] then covers a new row with probability at least the coverage. A
    coverage with too few rows for a finite Q is left out."""
    out = {}
    for coverage, (lower, upper) in INTERVALS.items():
        scores = np.maximum(tails[lower] - realised, realised - tails[upper])
        q = conformal_radius(scores, coverage / 100)
        if q is not None:
            out[coverage] = q
    return out


def widen_quantiles(
    z: np.ndarray, corrections: Mapping[tuple[int, int], float] | None, horizon: int
) -> np.ndarray:
    """Sorted quantile rows (columns in QUANTILE_LEVELS order) with each interval widened by its
    CQR correction for `horizon`; NaN bounds where none was measured. None: a model fitted before
    conformalisation, its quantiles as fitted."""
    if corrections is None:
        return z
    columns = list(QUANTILE_LEVELS)
    out = z.copy()
    for coverage, (lower, upper) in INTERVALS.items():
        lo, hi = columns.index(lower), columns.index(upper)
        q = corrections.get((horizon, coverage))
        out[:, lo] = z[:, lo] - q if q is not None else np.nan
        out[:, hi] = z[:, hi] + q if q is not None else np.nan
    finite = np.isfinite(out).all(axis=1)
    out[finite] = np.sort(out[finite], axis=1)  # a negative Q can make levels cross
    return out
