"""Max-Sharpe, min-volatility, the efficient frontier, HRP and equal weight, under one constraint set.

Why cvxpy (with the Clarabel solver it ships) and not a hand-written solver: these are convex
problems with exact optima, and cvxpy states them as written in the textbook. Max-Sharpe is
solved exactly by the Cornuejols-Tutuncu change of variables (y = kappa w: minimise y'Sigma y with
(mu - rf)'y = 1; homogeneous bounds and caps), as PyPortfolioOpt does, and the tests compare with
PyPortfolioOpt and scipy's SLSQP. Each problem is built once per constraint structure with
cvxpy Parameters and re-solved with new numbers, so a 50-point frontier or a 100-week backtest
compiles once (the speed goals in scripts/bench_portfolio.py).

HRP (PyPortfolioOpt's algorithm, see `hrp_weights`) and equal weight are not optimisers over the constraint set; when
they break a bound or cap they are moved to the nearest portfolio (least squares) that obeys it,
and the portfolio says so in its `note`.

When every expected return is at or below the risk-free rate (or no allowed portfolio beats it),
the Sharpe ratio has no positive maximum: max-Sharpe then returns the min-volatility portfolio
with `fallback=True` and the reason, never a crash and never a silently negative-Sharpe answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from crypto_ml.errors import AnalyticsError, InvalidInput
from crypto_ml.portfolio.constraints import Constraints
from crypto_ml.portfolio.estimators import covariance_factor

log = logging.getLogger(__name__)

STRATEGIES = ("max_sharpe", "min_volatility", "hrp", "equal_weight")


@dataclass(frozen=True)
class OptimisedPortfolio:
    """One strategy's weights (index: symbols, summing to 1) and what happened on the way."""

    strategy: str
    weights: pd.Series
    #: Why the result is not the plain answer (fallback, adjustment to constraints), for the report.
    note: str | None = None
    fallback: bool = False


@dataclass(frozen=True)
class FrontierPoint:
    point: int
    target_return: float
    weights: pd.Series


# --- the parameterised problems, built once per structure ----------------------------------------

#: (n, min_weight, max_weight, ((member indices), cap), ...): what a compiled problem depends on.
Structure = tuple[int, float, float, tuple[tuple[tuple[int, ...], float], ...]]


def _structure(symbols: Sequence[str], constraints: Constraints) -> Structure:
    groups = tuple(
        (tuple(members), group.cap) for group, members in constraints.group_indices(symbols)
    )
    return (len(symbols), constraints.min_weight, constraints.max_weight, groups)


def _feasible_set(w: Any, structure: Structure, scale: Any = 1.0) -> list[Any]:
    """Bounds and caps on w; with scale = kappa they are the homogenised max-Sharpe versions."""
    import cvxpy as cp

    _, low, high, groups = structure
    rules = [cp.sum(w) == scale, w >= low * scale, w <= high * scale]
    rules += [cp.sum(w[list(members)]) <= cap * scale for members, cap in groups]
    return rules


@lru_cache(maxsize=32)
def _max_sharpe_problem(structure: Structure) -> tuple[Any, Any, Any, Any, Any]:
    import cvxpy as cp

    n = structure[0]
    y, kappa = cp.Variable(n), cp.Variable(nonneg=True)
    excess, factor = cp.Parameter(n), cp.Parameter((n, n))
    rules = [excess @ y == 1, *_feasible_set(y, structure, kappa)]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(factor.T @ y)), rules)
    return problem, excess, factor, y, kappa


@lru_cache(maxsize=32)
def _min_variance_problem(
    structure: Structure, return_floor: bool
) -> tuple[Any, Any, Any, Any, Any]:
    """min w'Sigma w over the feasible set, with a floor on w'mu when `return_floor` (the
    frontier; its mu and floor Parameters are None otherwise)."""
    import cvxpy as cp

    n = structure[0]
    w = cp.Variable(n)
    factor = cp.Parameter((n, n))
    rules = _feasible_set(w, structure)
    mu = floor = None
    if return_floor:
        mu, floor = cp.Parameter(n), cp.Parameter()
        rules.append(mu @ w >= floor)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(factor.T @ w)), rules)
    return problem, factor, mu, floor, w


@lru_cache(maxsize=32)
def _max_return_problem(structure: Structure) -> tuple[Any, Any, Any]:
    import cvxpy as cp

    w, mu = cp.Variable(structure[0]), cp.Parameter(structure[0])
    problem = cp.Problem(cp.Maximize(mu @ w), _feasible_set(w, structure))
    return problem, mu, w


@lru_cache(maxsize=32)
def _projection_problem(structure: Structure) -> tuple[Any, Any, Any]:
    import cvxpy as cp

    w, target = cp.Variable(structure[0]), cp.Parameter(structure[0])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w - target)), _feasible_set(w, structure))
    return problem, target, w


def _solve(problem: Any, what: str) -> bool:
    """Solve; True when optimal, False when infeasible; AnalyticsError for anything else."""
    import cvxpy as cp

    try:
        problem.solve(solver=cp.CLARABEL)
    except cp.SolverError as exc:
        raise AnalyticsError(f"{what}: the solver failed ({exc})") from exc
    if problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        if problem.status == cp.OPTIMAL_INACCURATE:
            log.warning("%s: solver reports an inaccurate optimum", what)
        return True
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return False
    raise AnalyticsError(f"{what}: the solver ended with status {problem.status}")


def _clean(values: np.ndarray, symbols: Sequence[str], constraints: Constraints) -> pd.Series:
    """Solver output to weights: clip rounding noise into the bounds and renormalise."""
    w = np.clip(np.asarray(values, dtype=float), constraints.min_weight, constraints.max_weight)
    if constraints.min_weight == 0:
        w[w < 1e-9] = 0.0
    return pd.Series(w / w.sum(), index=list(symbols), name="weight")


def _infeasible(symbols: Sequence[str], constraints: Constraints, what: str) -> InvalidInput:
    caps = ", ".join(
        f"{g.name} <= {g.cap:g}" for g in constraints.restricted_to(symbols).group_caps
    )
    return InvalidInput(
        f"{what}: no portfolio of the {len(symbols)} eligible assets satisfies the constraints "
        f"(weights in [{constraints.min_weight:g}, {constraints.max_weight:g}]"
        f"{'; ' + caps if caps else ''})"
    )


# --- strategies -----------------------------------------------------------------------------------


def min_volatility(cov: pd.DataFrame, constraints: Constraints) -> OptimisedPortfolio:
    """The least-variance fully invested portfolio within the constraints."""
    symbols = list(cov.index)
    constraints.check_feasible(symbols)
    problem, factor, _, _, w = _min_variance_problem(_structure(symbols, constraints), False)
    factor.value = covariance_factor(cov)
    if not _solve(problem, "min-volatility"):
        raise _infeasible(symbols, constraints, "min-volatility")
    return OptimisedPortfolio("min_volatility", _clean(w.value, symbols, constraints))


def max_sharpe(
    mu: pd.Series, cov: pd.DataFrame, risk_free_rate: float, constraints: Constraints
) -> OptimisedPortfolio:
    """The exact tangency portfolio within the constraints, or min-volatility flagged as a
    fallback when no allowed portfolio earns more than the risk-free rate."""
    symbols = list(cov.index)
    constraints.check_feasible(symbols)
    mu = mu.reindex(symbols)
    excess = mu.to_numpy() - risk_free_rate
    if excess.max() <= 0:
        reason = (
            f"every expected return is at or below the risk-free rate {risk_free_rate:.2%} "
            f"(best: {mu.idxmax()} {mu.max():.2%}): max-Sharpe is undefined, min-volatility "
            "returned instead"
        )
        return _fallback(mu, cov, constraints, reason)
    problem, excess_param, factor, y, kappa = _max_sharpe_problem(_structure(symbols, constraints))
    excess_param.value = excess
    factor.value = covariance_factor(cov)
    if not _solve(problem, "max-Sharpe") or kappa.value is None or kappa.value <= 0:
        reason = (
            f"no portfolio within the constraints earns more than the risk-free rate "
            f"{risk_free_rate:.2%}: max-Sharpe is undefined, min-volatility returned instead"
        )
        return _fallback(mu, cov, constraints, reason)
    return OptimisedPortfolio("max_sharpe", _clean(y.value / kappa.value, symbols, constraints))


def _fallback(
    mu: pd.Series, cov: pd.DataFrame, constraints: Constraints, reason: str
) -> OptimisedPortfolio:
    log.warning("max-Sharpe: %s", reason)
    fallback = min_volatility(cov, constraints)
    return OptimisedPortfolio("max_sharpe", fallback.weights, note=reason, fallback=True)


def max_return(mu: pd.Series, constraints: Constraints) -> pd.Series:
    """The highest expected return the constraints allow (the frontier's upper end)."""
    symbols = list(mu.index)
    constraints.check_feasible(symbols)
    problem, mu_param, w = _max_return_problem(_structure(symbols, constraints))
    mu_param.value = mu.to_numpy()
    if not _solve(problem, "max-return"):
        raise _infeasible(symbols, constraints, "max-return")
    return _clean(w.value, symbols, constraints)


def efficient_frontier(
    mu: pd.Series, cov: pd.DataFrame, constraints: Constraints, points: int
) -> list[FrontierPoint]:
    """`points` minimum-variance portfolios with target returns evenly spaced from the
    min-volatility portfolio's return to the highest attainable one."""
    if points < 2:
        raise InvalidInput(f"frontier_points must be at least 2, got {points}")
    symbols = list(cov.index)
    mu = mu.reindex(symbols)
    low = float(mu.to_numpy() @ min_volatility(cov, constraints).weights.to_numpy())
    high = float(mu.to_numpy() @ max_return(mu, constraints).to_numpy())
    problem, factor, mu_param, floor, w = _min_variance_problem(
        _structure(symbols, constraints), True
    )
    factor.value = covariance_factor(cov)
    mu_param.value = mu.to_numpy()
    frontier = []
    # The top target is reachable only to solver precision: aim a hair below it.
    for point, target in enumerate(np.linspace(low, high - 1e-9 * max(1.0, abs(high)), points)):
        floor.value = float(target)
        if not _solve(problem, f"frontier point {point}"):
            raise _infeasible(symbols, constraints, f"frontier point {point}")
        frontier.append(FrontierPoint(point, float(target), _clean(w.value, symbols, constraints)))
    return frontier


def project_onto_constraints(
    weights: pd.Series, constraints: Constraints
) -> tuple[pd.Series, float]:
    """The portfolio nearest (least squares) to `weights` that obeys the constraints, and the
    L1 distance moved; `weights` itself (distance 0) when it already obeys them."""
    symbols = list(weights.index)
    if not constraints.violations(weights):
        return weights, 0.0
    constraints.check_feasible(symbols)
    problem, target, w = _projection_problem(_structure(symbols, constraints))
    target.value = weights.to_numpy()
    if not _solve(problem, "projection onto the constraints"):
        raise _infeasible(symbols, constraints, "projection")
    projected = _clean(w.value, symbols, constraints)
    return projected, float((projected - weights).abs().sum())


def hrp_weights(
    cov: pd.DataFrame, corr: pd.DataFrame | None = None, linkage: str = "single"
) -> pd.Series:
    """Lopez de Prado's hierarchical risk parity: cluster on the correlation distance
    sqrt((1 - rho) / 2) (scipy), order the leaves, then split the order in halves recursively,
    giving each half weight in inverse proportion to its inverse-variance portfolio's variance.

    The same algorithm, step for step, as PyPortfolioOpt's `HRPOpt.optimize` (the tests compare
    both with it and with its reference weights), on numpy arrays: HRPOpt's pandas indexing costs
    ~0.2 s a call on 38 assets, and the backtest calls HRP every week.
    """
    import scipy.cluster.hierarchy as sch
    from scipy.spatial.distance import squareform

    if linkage not in sch._LINKAGE_METHODS:
        raise InvalidInput(f"hrp_linkage {linkage!r}: choose single, complete, average or ward")
    covariance = cov.to_numpy(dtype=float)
    if corr is None:
        std = np.sqrt(np.diag(covariance))
        correlation = covariance / np.outer(std, std)
    else:
        correlation = corr.loc[cov.index, cov.index].to_numpy(dtype=float)
    distance = np.sqrt(np.clip((1.0 - correlation) / 2.0, 0.0, 1.0))
    clusters = sch.linkage(squareform(distance, checks=False), linkage)
    order = sch.to_tree(clusters, rd=False).pre_order()
    weights = np.ones(len(order))  # by position in cov.index; groups hold such positions

    def cluster_variance(items: list[int]) -> float:
        block = covariance[np.ix_(items, items)]
        inverse = 1 / np.diag(block)
        inverse /= inverse.sum()
        return float(inverse @ block @ inverse)

    groups = [order]
    while groups:
        groups = [
            g[a:b]
            for g in groups
            for a, b in ((0, len(g) // 2), (len(g) // 2, len(g)))
            if len(g) > 1
        ]
        for left, right in zip(groups[::2], groups[1::2], strict=True):
            left_var, right_var = cluster_variance(left), cluster_variance(right)
            alpha = 1 - left_var / (left_var + right_var)
            weights[left] *= alpha
            weights[right] *= 1 - alpha
    return pd.Series(weights, index=cov.index, name="weight")


def hierarchical_risk_parity(
    cov: pd.DataFrame, constraints: Constraints, linkage: str = "single"
) -> OptimisedPortfolio:
    """HRP on the run's covariance, moved into the constraints when it breaks one."""
    return _within_constraints("hrp", hrp_weights(cov, linkage=linkage), constraints)


def equal_weight(symbols: Sequence[str], constraints: Constraints) -> OptimisedPortfolio:
    """1/N over the eligible tokens (moved into the constraints when a cap binds)."""
    weights = pd.Series(1.0 / len(symbols), index=list(symbols), name="weight")
    return _within_constraints("equal_weight", weights, constraints)


def _within_constraints(
    strategy: str, weights: pd.Series, constraints: Constraints
) -> OptimisedPortfolio:
    adjusted, moved = project_onto_constraints(weights, constraints)
    if moved == 0.0:
        return OptimisedPortfolio(strategy, adjusted)
    note = f"moved {moved:.4f} of weight (L1) to the nearest portfolio within the bounds and caps"
    return OptimisedPortfolio(strategy, adjusted, note=note)


def optimise(
    strategy: str,
    mu: pd.Series,
    cov: pd.DataFrame,
    risk_free_rate: float,
    constraints: Constraints,
    hrp_linkage: str = "single",
) -> OptimisedPortfolio:
    """One strategy by name (the names of `STRATEGIES`)."""
    if strategy == "max_sharpe":
        return max_sharpe(mu, cov, risk_free_rate, constraints)
    if strategy == "min_volatility":
        return min_volatility(cov, constraints)
    if strategy == "hrp":
        return hierarchical_risk_parity(cov, constraints, hrp_linkage)
    if strategy == "equal_weight":
        return equal_weight(list(cov.index), constraints)
    raise InvalidInput(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
