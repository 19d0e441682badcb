"""Split-conformal calibration of prediction intervals from validation residuals.

Given n exchangeable nonconformity scores (here |realised - forecast| / (sigma × sqrt(h)), a
forecast error in units of the token's recent volatility), the ⌈(n + 1)·c⌉-th smallest score is
a radius whose interval covers a new point with probability at least c (Vovk et al.; Angelopoulos
& Bates, "A Gentle Introduction to Conformal Prediction", 2021). With fewer than
1/(1 - c) - 1 scores no finite radius has that guarantee, and none is returned.
"""

from __future__ import annotations

import math

import numpy as np


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
