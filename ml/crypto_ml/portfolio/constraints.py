"""The constraints every optimised portfolio obeys, and the arithmetic that proves them feasible.

Why a module of its own: the optimisers, the HRP/equal-weight adjustment, the backtest and the
tests all need the same set (long-only per-asset bounds, category caps, the stablecoin cap), and
an infeasible set must fail with the constraint named, before any solver answers "infeasible".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from crypto_analytics.config import PortfolioConfig, Token
from crypto_ml.errors import InvalidInput

log = logging.getLogger(__name__)

#: Slack when checking a solution against its constraints (solvers are exact to ~1e-9).
TOLERANCE = 1e-7


@dataclass(frozen=True)
class GroupCap:
    """At most `cap` of the portfolio in `symbols` together (a category, or the stablecoins)."""

    name: str
    symbols: tuple[str, ...]
    cap: float


@dataclass(frozen=True)
class Constraints:
    """Long-only weights summing to 1, each in [min_weight, max_weight], groups under their caps."""

    min_weight: float = 0.0
    max_weight: float = 1.0
    group_caps: tuple[GroupCap, ...] = ()

    def restricted_to(self, symbols: Sequence[str]) -> Constraints:
        """The same constraints over a subset of tokens (groups left empty are dropped)."""
        present = set(symbols)
        groups = tuple(
            GroupCap(g.name, tuple(s for s in g.symbols if s in present), g.cap)
            for g in self.group_caps
        )
        return Constraints(self.min_weight, self.max_weight, tuple(g for g in groups if g.symbols))

    def group_indices(self, symbols: Sequence[str]) -> list[tuple[GroupCap, list[int]]]:
        position = {s: i for i, s in enumerate(symbols)}
        return [
            (g, [position[s] for s in g.symbols if s in position])
            for g in self.group_caps
            if any(s in position for s in g.symbols)
        ]

    def check_feasible(self, symbols: Sequence[str]) -> None:
        """InvalidInput naming the constraint when no portfolio of `symbols` can satisfy them."""
        _check_feasible(self, tuple(symbols))

    def _check_feasible(self, symbols: tuple[str, ...]) -> None:
        n = len(symbols)
        if n * self.max_weight < 1 - TOLERANCE:
            raise InvalidInput(
                f"infeasible bounds: max_weight {self.max_weight:g} x {n} eligible assets = "
                f"{n * self.max_weight:.2f} < 1; raise portfolio.max_weight or add assets"
            )
        if n * self.min_weight > 1 + TOLERANCE:
            raise InvalidInput(
                f"infeasible bounds: min_weight {self.min_weight:g} x {n} eligible assets = "
                f"{n * self.min_weight:.2f} > 1; lower portfolio.min_weight"
            )
        groups = self.group_indices(symbols)
        for group, members in groups:
            floor = len(members) * self.min_weight
            if floor > group.cap + TOLERANCE:
                raise InvalidInput(
                    f"infeasible constraints: {group.name} must hold at least min_weight "
                    f"{self.min_weight:g} x {len(members)} assets = {floor:.2f}, above its cap "
                    f"{group.cap:g}"
                )
        if groups:
            investable = self._max_investable(n, groups)
            if investable < 1 - TOLERANCE:
                caps = ", ".join(f"{g.name} <= {g.cap:g}" for g, _ in groups)
                raise InvalidInput(
                    f"infeasible constraints: with max_weight {self.max_weight:g} and the caps "
                    f"({caps}) at most {investable:.2f} of the portfolio can be invested in the "
                    f"{n} eligible assets; loosen portfolio.category_caps / stablecoin_cap or "
                    "max_weight"
                )

    def _max_investable(self, n: int, groups: list[tuple[GroupCap, list[int]]]) -> float:
        """The largest total weight the bounds and caps allow (an LP; groups may overlap)."""
        from scipy.optimize import linprog

        a_ub = np.zeros((len(groups), n))
        for row, (_, members) in enumerate(groups):
            a_ub[row, members] = 1.0
        result = linprog(
            -np.ones(n),
            A_ub=a_ub,
            b_ub=[g.cap for g, _ in groups],
            bounds=[(self.min_weight, self.max_weight)] * n,
            method="highs",
        )
        return float(-result.fun) if result.status == 0 else 0.0

    def violations(self, weights: pd.Series, tolerance: float = TOLERANCE) -> list[str]:
        """Every constraint `weights` breaks, as readable lines (empty when it obeys them all)."""
        problems = []
        total = float(weights.sum())
        if abs(total - 1) > tolerance:
            problems.append(f"weights sum to {total:.6f}, not 1")
        for symbol, weight in weights.items():
            if weight < self.min_weight - tolerance:
                problems.append(f"{symbol} {weight:.6f} below min_weight {self.min_weight:g}")
            if weight > self.max_weight + tolerance:
                problems.append(f"{symbol} {weight:.6f} above max_weight {self.max_weight:g}")
        for group in self.group_caps:
            held = float(weights.reindex(list(group.symbols)).fillna(0).sum())
            if held > group.cap + tolerance:
                problems.append(f"{group.name} holds {held:.6f}, above its cap {group.cap:g}")
        return problems


@lru_cache(maxsize=256)
def _check_feasible(constraints: Constraints, symbols: tuple[str, ...]) -> None:
    """Memoised: the backtest asks the same question every week (an LP when caps are set)."""
    constraints._check_feasible(symbols)


def constraints_from_settings(config: PortfolioConfig, tokens: Sequence[Token]) -> Constraints:
    """The configured bounds and caps over the universe; unknown categories are an error."""
    categories = sorted({t.category for t in tokens})
    groups: list[GroupCap] = []
    for category, cap in config.category_caps.items():
        if category not in categories:
            raise InvalidInput(
                f"portfolio.category_caps names unknown category {category!r}; the universe's "
                f"categories are: {', '.join(categories)}"
            )
        members = tuple(t.symbol for t in tokens if t.category == category)
        groups.append(GroupCap(f"category {category}", members, cap))
    if config.stablecoins == "cap":
        stable = tuple(t.symbol for t in tokens if t.stablecoin)
        groups.append(GroupCap("stablecoins", stable, config.stablecoin_cap))
    return Constraints(config.min_weight, config.max_weight, tuple(groups))
