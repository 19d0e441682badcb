"""Expected returns and covariance, annualised with 365 periods, from daily returns.

Why these estimators: the historical mean is the textbook input; an EMA of returns leans on the
recent regime (PyPortfolioOpt's `ema_historical_return` with `compounding=False`, to which the
tests compare); champion forecasts turn the forecasting package's price predictions into a rate.
The sample covariance is singular-prone with stablecoins (variance ~1e-8) and noisy with 38 assets
on a year of data, so Ledoit-Wolf shrinkage (scikit-learn) is the default. Both expected returns
and covariance are arithmetic (mean daily x 365, covariance x 365), so a portfolio's expected
return and variance are exactly `w @ mu` and `w @ Sigma @ w`.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Literal, TypeVar

import numpy as np
import pandas as pd

from crypto_analytics.contract import PERIODS_PER_YEAR
from crypto_ml.errors import InvalidInput, NotEnoughData

log = logging.getLogger(__name__)

ReturnKind = Literal["simple", "log"]
ArrayOrFrame = TypeVar("ArrayOrFrame", pd.DataFrame, np.ndarray)
ExpectedReturnsMethod = Literal["mean", "ema", "forecast"]
CovarianceMethod = Literal["sample", "ledoit_wolf"]

#: Eigenvalues below this share of the largest are lifted to it: keeps a near-singular covariance
#: (stablecoins) positive definite without moving any other entry measurably.
MIN_EIGENVALUE_RATIO = 1e-10


def returns_from_prices(prices: pd.DataFrame, kind: ReturnKind) -> pd.DataFrame:
    """Daily returns of a prices frame on a daily index; NaN across a missing day (never spanned),
    the same rule gold's `daily_return`/`log_return` follow."""
    calendar = pd.date_range(prices.index.min(), prices.index.max(), freq="D")
    daily = prices.reindex(calendar)
    ratio = daily / daily.shift(1)
    out = ratio.apply(np.log) if kind == "log" else ratio - 1
    return out.iloc[1:]


def to_simple(returns: ArrayOrFrame, kind: ReturnKind) -> ArrayOrFrame:
    """Simple returns from returns of `kind` (exact: expm1 of a log return)."""
    if kind != "log":
        return returns
    if isinstance(returns, pd.DataFrame):
        return returns.apply(np.expm1)
    return np.expm1(returns)


def expected_returns(
    returns: pd.DataFrame,
    method: Literal["mean", "ema"],
    ema_span: int = 60,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> pd.Series:
    """Annualised expected returns: the arithmetic mean, or an exponentially weighted mean."""
    if method == "mean":
        daily = returns.mean()
    elif method == "ema":
        daily = returns.ewm(span=ema_span).mean().iloc[-1]
    else:
        raise InvalidInput(f"expected returns method {method!r}: choose mean, ema or forecast")
    return (daily * periods_per_year).rename("expected_return")


def forecast_expected_returns(
    predictions: pd.DataFrame,
    last_close: pd.Series,
    kind: ReturnKind,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> pd.Series:
    """Annualised expected returns implied by point forecasts.

    `predictions` has one row per symbol with `point` (the forecast close) and `horizon_days`.
    The forecast move from the last close is turned into a daily rate (geometric for simple
    returns, ln/h for log returns) and annualised like the historical mean, so the two methods
    are interchangeable inputs.
    """
    joined = predictions.join(last_close.rename("last_close"), how="inner")
    if joined.empty:
        raise NotEnoughData("no price forecast matches a token with a last close")
    growth = joined["point"] / joined["last_close"]
    horizon = joined["horizon_days"].astype(float)
    if (growth <= 0).any():
        bad = ", ".join(joined.index[growth <= 0])
        raise InvalidInput(f"non-positive forecast prices for {bad}")
    daily = np.log(growth) / horizon if kind == "log" else growth ** (1 / horizon) - 1
    return pd.Series(daily * periods_per_year, index=joined.index, name="expected_return")


def covariance(
    returns: pd.DataFrame,
    method: CovarianceMethod,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> pd.DataFrame:
    """Annualised covariance: the sample estimate or Ledoit-Wolf shrinkage (scikit-learn), made
    symmetric positive definite (see `repair_covariance`). Needs complete rows."""
    if returns.isna().any().any():
        raise InvalidInput("covariance needs complete rows: drop the days with gaps first")
    if len(returns) < 2:
        raise NotEnoughData(f"covariance needs at least 2 days of returns, got {len(returns)}")
    if method == "sample":
        matrix = returns.cov().to_numpy()
    elif method == "ledoit_wolf":
        from sklearn.covariance import LedoitWolf

        matrix = LedoitWolf().fit(returns.to_numpy()).covariance_
    else:
        raise InvalidInput(f"covariance method {method!r}: choose sample or ledoit_wolf")
    cov = pd.DataFrame(matrix * periods_per_year, index=returns.columns, columns=returns.columns)
    return repair_covariance(cov)


def repair_covariance(cov: pd.DataFrame) -> pd.DataFrame:
    """Symmetrise, and lift eigenvalues below MIN_EIGENVALUE_RATIO x the largest.

    Why: a stablecoin's variance is ~1e-8 of BTC's, and two pegged coins are nearly collinear;
    solvers then see a matrix that is indefinite by rounding. Lifting only the tiny eigenvalues
    changes nothing a portfolio can measure, and is logged when it happens.
    """
    matrix = cov.to_numpy(dtype=float)
    matrix = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(matrix)
    floor = max(values.max(), 0.0) * MIN_EIGENVALUE_RATIO
    if values.min() < floor:
        log.info(
            "covariance near-singular (smallest eigenvalue %.3g, largest %.3g): lifted to %.3g",
            values.min(),
            values.max(),
            floor,
        )
        values = np.maximum(values, floor)
        matrix = (vectors * values) @ vectors.T
        matrix = (matrix + matrix.T) / 2
    return pd.DataFrame(matrix, index=cov.index, columns=cov.columns)


def covariance_factor(cov: pd.DataFrame | np.ndarray) -> np.ndarray:
    """F with F @ F.T == cov (from the eigendecomposition, so it exists for any PSD matrix):
    the optimisers minimise ||F.T @ w||^2, which keeps their problems parameterisable.
    Memoised on the matrix's bytes: a run factors the same matrix for several strategies."""
    matrix = np.ascontiguousarray(cov, dtype=float)
    return _factor(matrix.tobytes(), matrix.shape[0]).copy()


@lru_cache(maxsize=8)
def _factor(matrix_bytes: bytes, n: int) -> np.ndarray:
    matrix = np.frombuffer(matrix_bytes, dtype=float).reshape(n, n)
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))
