"""The report's picture: the Monte Carlo cloud, the efficient frontier and each strategy marked.

Why matplotlib (a static PNG): the report is e-mailed, and mail clients run no JavaScript and
show neither SVG nor Plotly; Plotly's static export needs kaleido and a browser, which this stack
does not ship. The Agg backend renders headless.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd

from crypto_ml.portfolio.store import StrategyResult

_MARKERS = {"max_sharpe": "*", "min_volatility": "D", "hrp": "s", "equal_weight": "o"}
_LABELS = {
    "max_sharpe": "max Sharpe",
    "min_volatility": "min volatility",
    "hrp": "HRP",
    "equal_weight": "equal weight",
}


def frontier_png(
    monte_carlo: pd.DataFrame,
    frontier: pd.DataFrame,
    strategies: Sequence[StrategyResult],
    risk_free_rate: float,
    title: str,
) -> bytes:
    """PNG bytes of the risk/return picture (annualised volatility vs expected return)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    try:
        if not monte_carlo.empty:
            cloud = ax.scatter(
                monte_carlo["volatility"] * 100,
                monte_carlo["expected_return"] * 100,
                c=monte_carlo["sharpe"],
                cmap="viridis",
                s=4,
                alpha=0.5,
                linewidths=0,
            )
            fig.colorbar(cloud, ax=ax, label="Sharpe ratio (random long-only portfolios, no caps)")
        if not frontier.empty:
            ax.plot(
                frontier["volatility"] * 100,
                frontier["expected_return"] * 100,
                color="black",
                linewidth=2,
                label="efficient frontier",
            )
        for result in strategies:
            label = _LABELS.get(result.strategy, result.strategy)
            if result.is_fallback:
                label += " (fallback: min vol)"
            ax.scatter(
                result.metrics.volatility * 100,
                result.metrics.expected_return * 100,
                marker=_MARKERS.get(result.strategy, "o"),
                s=220 if result.strategy == "max_sharpe" else 90,
                edgecolors="black",
                zorder=5,
                label=label,
            )
        ax.axhline(risk_free_rate * 100, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("volatility (annualised, %)")
        ax.set_ylabel("expected return (annualised, %)")
        ax.set_title(title)
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
