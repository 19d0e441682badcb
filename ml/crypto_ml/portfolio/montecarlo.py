"""Random long-only portfolios for the frontier picture, and return scenarios for Monte Carlo VaR.

Why vectorised in chunks: a million 38-asset portfolios are 300 MB as one float64 array; chunks of
50,000 stay in cache, and the portfolio variance is taken as ||W F||^2 with the covariance factor
F rather than forming W Sigma W' row by row. The draws and products are float32 (7 significant
digits, plenty for a picture, and half the memory traffic of float64, which is what bounds
this loop); results are returned as float64. Weights are Dirichlet(alpha) draws (alpha = 1:
uniform over the simplex, sampled as normalised exponentials). Chunks run on a small thread pool
(numpy's generators and matrix products release the GIL), each with its own generator spawned
from the seed, so the cloud is the same whatever the number of threads. The cloud's best Sharpe
is well below the optimum on 38 assets: it is a picture, never the answer (the optimum is marked
on it).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crypto_ml.errors import InvalidInput
from crypto_ml.portfolio.estimators import covariance_factor

CHUNK = 50_000
#: Threads for the chunks: the machine's cores, at most 4 (the loop is memory-bound beyond that).
THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class MonteCarloCloud:
    """Expected return, volatility and Sharpe of every simulated portfolio (annualised)."""

    expected_returns: np.ndarray
    volatilities: np.ndarray
    sharpes: np.ndarray

    def __len__(self) -> int:
        return len(self.expected_returns)

    def sample(self, size: int, seed: int) -> pd.DataFrame:
        """A reproducible random subset for display (all of them when size >= len)."""
        rng = np.random.default_rng(seed)
        count = min(size, len(self))
        chosen = np.sort(rng.choice(len(self), size=count, replace=False))
        return pd.DataFrame(
            {
                "sample_index": chosen,
                "expected_return": self.expected_returns[chosen],
                "volatility": self.volatilities[chosen],
                "sharpe": self.sharpes[chosen],
            }
        )


def random_portfolios(
    mu: pd.Series,
    cov: pd.DataFrame,
    risk_free_rate: float,
    portfolios: int,
    seed: int,
    dirichlet_alpha: float = 1.0,
) -> MonteCarloCloud:
    """`portfolios` random long-only fully invested portfolios over mu's assets."""
    if portfolios < 1:
        raise InvalidInput(f"Monte Carlo needs at least one portfolio, got {portfolios}")
    if dirichlet_alpha <= 0:
        raise InvalidInput(f"dirichlet_alpha must be positive, got {dirichlet_alpha}")
    symbols = list(mu.index)
    n = len(symbols)
    factor = covariance_factor(cov.loc[symbols, symbols])
    # One product per chunk gives everything: [F | mu | 1] -> spread, w'mu and the weight sum.
    combined = np.column_stack([factor, mu.to_numpy(dtype=float), np.ones(n)]).astype(np.float32)
    starts = range(0, portfolios, CHUNK)
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    returns = np.empty(portfolios)
    variances = np.empty(portfolios)

    def simulate(chunk: int) -> None:
        start = starts[chunk]
        size = min(CHUNK, portfolios - start)
        rng = np.random.default_rng(seeds[chunk])
        if dirichlet_alpha == 1.0:
            draws = rng.standard_exponential((size, n), dtype=np.float32)
        else:
            draws = rng.standard_gamma(dirichlet_alpha, (size, n), dtype=np.float32)
        product = draws @ combined
        spread, totals = product[:, :n], product[:, n + 1]
        returns[start : start + size] = product[:, n] / totals
        variances[start : start + size] = np.einsum("ij,ij->i", spread, spread) / totals**2

    if len(starts) == 1 or THREADS == 1:
        for chunk in range(len(starts)):
            simulate(chunk)
    else:
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            list(pool.map(simulate, range(len(starts))))
    volatilities = np.sqrt(variances)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpes = np.where(volatilities > 0, (returns - risk_free_rate) / volatilities, np.nan)
    return MonteCarloCloud(returns, volatilities, sharpes)


def return_scenarios(
    mu: pd.Series, cov: pd.DataFrame, scenarios: int, seed: int, periods_per_year: int
) -> np.ndarray:
    """Daily return scenarios (scenarios x assets) from N(mu / P, Sigma / P): the Gaussian
    counterpart of the historical sample, for Monte Carlo VaR/CVaR."""
    rng = np.random.default_rng(seed)
    symbols = list(mu.index)
    factor = covariance_factor(cov.loc[symbols, symbols]) / np.sqrt(periods_per_year)
    shocks = rng.standard_normal((scenarios, len(symbols)))
    return mu.to_numpy(dtype=float) / periods_per_year + shocks @ factor.T
