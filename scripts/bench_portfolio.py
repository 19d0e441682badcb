"""Benchmark the portfolio optimiser (`make bench`): the speed goals of issue 7, printed.

On 38 assets (the whole universe's made-up daily returns over a year, Ledoit-Wolf covariance):

  1. 1,000,000 random long-only portfolios (return, volatility, Sharpe each): goal < 1 s;
  2. exact max-Sharpe under the configured bounds and caps, first solve (problem built and
     compiled) and warm re-solves with new inputs: goal < 1 s;
  3. a 50-point efficient frontier (min-volatility, max-return and 50 solves): goal < 1 s;
  4. for scale: HRP, and one weekly rebalance of the walk-forward backtest (all four
     strategies from estimation to weights).

Figures are the median of --repeat runs (wall clock, this process). Printing them is the point:
speed is never asserted in the tests. Needs no database.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _median_cpu_seconds(run: Callable[[], object], repeat: int) -> float:
    """CPU seconds of this process, all threads together: on a shared machine, an upper bound of
    what the wall time would be on a quiet one."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--portfolios", type=int, default=1_000_000)
    args = parser.parse_args()

    from crypto_ml.portfolio.constraints import constraints_from_settings
    from crypto_ml.portfolio.estimators import covariance, expected_returns
    from crypto_ml.portfolio.montecarlo import random_portfolios
    from crypto_ml.portfolio.optimizers import (
        _max_sharpe_problem,
        efficient_frontier,
        hrp_weights,
        max_sharpe,
        optimise,
    )

    from crypto_analytics.config import get_settings

    settings = get_settings()
    symbols = [t.symbol for t in settings.tokens]
    rng = np.random.default_rng(2024)
    n = len(symbols)
    daily = rng.normal(np.linspace(0.0, 0.004, n), 0.04, (365, n)) + rng.normal(0, 0.03, (365, 1))
    returns = pd.DataFrame(daily, columns=symbols, index=pd.date_range("2024-01-01", periods=365))
    mu = expected_returns(returns, "mean")
    cov = covariance(returns, "ledoit_wolf")
    config = settings.portfolio
    limits = constraints_from_settings(
        config.model_copy(update={"stablecoins": "include"}), settings.tokens
    )
    rf = config.risk_free_rate
    print(f"{n} assets, 365 days, Ledoit-Wolf; bounds [{config.min_weight}, {config.max_weight}],"
          f" caps {config.category_caps}; median of {args.repeat}")  # fmt: skip

    def cloud() -> None:
        random_portfolios(mu, cov, rf, args.portfolios, seed=1)

    mc = _median_seconds(cloud, args.repeat)
    mc_cpu = _median_cpu_seconds(cloud, args.repeat)
    print(f"Monte Carlo, {args.portfolios:,} portfolios: {mc:.3f} s wall, {mc_cpu:.3f} CPU s "
          f"({args.portfolios / mc:,.0f} portfolios/s; goal < 1 s: {'met' if mc < 1 else 'MISSED'})")  # fmt: skip

    def cold_max_sharpe() -> None:
        _max_sharpe_problem.cache_clear()
        max_sharpe(mu, cov, rf, limits)

    cold = _median_seconds(cold_max_sharpe, args.repeat)
    shifted = [mu + rng.normal(0, 0.05, n) for _ in range(args.repeat)]
    warm = _median_seconds(lambda: max_sharpe(shifted.pop(), cov, rf, limits), args.repeat)
    print(f"exact max-Sharpe, 38 assets with caps: {cold:.3f} s first solve (build + compile), "
          f"{warm * 1000:.1f} ms re-solve (goal < 1 s: {'met' if cold < 1 else 'MISSED'})")  # fmt: skip

    frontier = _median_seconds(lambda: efficient_frontier(mu, cov, limits, 50), args.repeat)
    print(f"efficient frontier, 50 points: {frontier:.3f} s "
          f"(goal < 1 s: {'met' if frontier < 1 else 'MISSED'})")  # fmt: skip

    hrp = _median_seconds(lambda: hrp_weights(cov), args.repeat)
    print(f"HRP weights: {hrp * 1000:.1f} ms")

    def one_rebalance() -> None:
        for strategy in ("max_sharpe", "min_volatility", "hrp", "equal_weight"):
            optimise(strategy, mu, cov, rf, limits)

    rebalance = _median_seconds(one_rebalance, args.repeat)
    print(f"one backtest rebalance (4 strategies, warm): {rebalance * 1000:.1f} ms")


if __name__ == "__main__":
    main()
