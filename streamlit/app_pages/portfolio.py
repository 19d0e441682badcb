"""Portfolio optimiser: the weekly run's Monte Carlo cloud coloured by Sharpe under its efficient
frontier with the strategies marked, weights per strategy, the rebalancing trades and the
walk-forward backtest; and the same optimisation recomputed on the spot for an asset set,
bounds and risk-free rate the user picks (small sets only)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from crypto_analytics.config import get_settings
from crypto_analytics.errors import CryptoAnalyticsError

import charts
import notices
import portfolio_whatif
import queries

settings = get_settings()
STRATEGY_LABELS = {k: v[2] for k, v in charts.STRATEGY_MARKERS.items()}
DEFAULT_WHATIF = ("BTC", "ETH", "SOL", "BNB", "XRP", "LINK")
#: Random portfolios drawn (every k-th of the stored sample): the cloud has the same shape with
#: 1,000 points, and SVG markers are what the browser spends its time on.
CLOUD_SHOWN = 1000

st.title("Portfolio optimiser")


def strategy_table(weights: pd.DataFrame) -> None:
    per_strategy = weights.groupby("strategy", sort=False).first().reset_index()
    per_strategy["strategy"] = per_strategy["strategy"].map(lambda s: STRATEGY_LABELS.get(s, s))
    shown = per_strategy[
        [
            "strategy",
            "expected_return",
            "volatility",
            "sharpe",
            "sortino",
            "max_drawdown",
            "var_historical",
            "cvar_historical",
            "is_fallback",
            "note",
        ]
    ]
    st.dataframe(
        shown.assign(**{c: shown[c] * 100 for c in ("expected_return", "volatility", "max_drawdown", "var_historical", "cvar_historical")}),
        hide_index=True,
        width="stretch",
        column_config={
            "expected_return": st.column_config.NumberColumn("return % a year", format="%.1f"),
            "volatility": st.column_config.NumberColumn("volatility % a year", format="%.1f"),
            "sharpe": st.column_config.NumberColumn("Sharpe", format="%.2f"),
            "sortino": st.column_config.NumberColumn("Sortino", format="%.2f"),
            "max_drawdown": st.column_config.NumberColumn("max drawdown %", format="%.1f"),
            "var_historical": st.column_config.NumberColumn("1-day VaR %", format="%.2f"),
            "cvar_historical": st.column_config.NumberColumn("1-day CVaR %", format="%.2f"),
            "is_fallback": st.column_config.CheckboxColumn("fallback"),
        },
    )  # fmt: skip


with notices.section():
    runs = queries.require_rows(
        queries.portfolio_run_dates(),
        "portfolio run",
        "run `crypto-analytics portfolio optimize` (the portfolio_optimization DAG runs it weekly), or `make demo`",
    )
    run_date = st.selectbox("Run", runs["run_date"].tolist(), format_func=lambda d: f"{d:%Y-%m-%d}")
    weights = queries.portfolio_weights(run_date)
    points = (
        weights.groupby("strategy", sort=False)[["expected_return", "volatility", "sharpe"]]
        .first()
        .reset_index()
    )
    cloud = queries.monte_carlo_portfolios(run_date)
    st.plotly_chart(
        charts.frontier_chart(cloud.iloc[:: max(1, len(cloud) // CLOUD_SHOWN)], queries.efficient_frontier(run_date), points),
        width="stretch",
        key="main_chart",
    )  # fmt: skip
    st.caption(
        "Random long-only portfolios (a sample, coloured by Sharpe) beside the efficient frontier; "
        "returns and volatility annualised with 365 days. The frontier and the strategies obey the "
        "bounds and caps of config portfolio.*; the random portfolios do not (they only illustrate "
        "the trade-off), so some can sit beyond the frontier."
    )
    strategy_table(weights)
    fallbacks = (
        weights.loc[weights["is_fallback"].fillna(False).astype(bool), "note"].dropna().unique()
    )
    for note in fallbacks:
        st.warning(note, icon=":material/warning:")

    st.subheader("Weights per strategy")
    st.plotly_chart(charts.weights_chart(weights), width="stretch", key="weights_chart")

    st.subheader("Rebalancing")
    trades = queries.rebalancing_recommendations(run_date)
    if trades.empty:
        st.caption("No rebalancing report for this run (`crypto-analytics portfolio report`).")
    else:
        st.dataframe(
            trades.assign(**{c: trades[c] * 100 for c in ("current_weight", "target_weight", "drift", "band", "trade_weight")}),
            hide_index=True,
            width="stretch",
            column_config={
                "current_weight": st.column_config.NumberColumn("current %", format="%.2f"),
                "target_weight": st.column_config.NumberColumn("target %", format="%.2f"),
                "drift": st.column_config.NumberColumn("drift %", format="%+.2f"),
                "band": st.column_config.NumberColumn("band %", format="%.2f"),
                "trade_weight": st.column_config.NumberColumn("trade %", format="%+.2f"),
                "trade_value": st.column_config.NumberColumn("trade value", format="%+,.2f"),
                "trade_quantity": st.column_config.NumberColumn("units", format="%+.6g"),
                "price": st.column_config.NumberColumn("price", format="%.6g"),
            },
        )  # fmt: skip

    st.subheader("Backtest")
    backtest = queries.portfolio_backtest(run_date)
    if backtest.empty:
        st.caption("No backtest for this run.")
    else:
        st.plotly_chart(charts.equity_chart(backtest), width="stretch", key="equity_chart")
        summary = queries.portfolio_backtest_summary(run_date)
        st.dataframe(
            summary.assign(**{c: summary[c] * 100 for c in ("total_return", "cagr", "volatility", "max_drawdown", "turnover")}),
            hide_index=True,
            width="stretch",
            column_config={
                "total_return": st.column_config.NumberColumn("total %", format="%.1f"),
                "cagr": st.column_config.NumberColumn("CAGR %", format="%.1f"),
                "volatility": st.column_config.NumberColumn("vol %", format="%.1f"),
                "sharpe": st.column_config.NumberColumn("Sharpe", format="%.2f"),
                "sortino": st.column_config.NumberColumn("Sortino", format="%.2f"),
                "max_drawdown": st.column_config.NumberColumn("max DD %", format="%.1f"),
                "turnover": st.column_config.NumberColumn("turnover %", format="%.0f"),
            },
        )  # fmt: skip
        st.caption("Walk-forward: weekly rebalancing using only data before each rebalance day, trading costs included.")  # fmt: skip

st.subheader("Recompute on the spot")
with notices.section():
    universe = queries.token_intervals()
    choices = universe["symbol"].tolist()
    config = settings.portfolio
    with st.form("whatif"):
        chosen = st.multiselect(
            f"Assets (2 to {settings.dashboard.max_recompute_assets})",
            choices,
            default=[s for s in DEFAULT_WHATIF if s in choices],
            max_selections=settings.dashboard.max_recompute_assets,
        )
        low, high, rate = st.columns(3)
        min_weight = low.number_input(
            "Min weight per asset", 0.0, 1.0, float(config.min_weight), 0.01
        )
        max_weight = high.number_input(
            "Max weight per asset", 0.01, 1.0, float(config.max_weight), 0.01
        )
        risk_free = rate.number_input(
            "Risk-free rate (a year)", -0.1, 1.0, float(config.risk_free_rate), 0.005, format="%.3f"
        )
        submitted = st.form_submit_button("Recompute", icon=":material/calculate:")
    if submitted:
        run_on = queries.latest_complete_day() + timedelta(days=1)
        try:
            with st.spinner("Optimising..."):
                result = portfolio_whatif.recompute(
                    chosen, min_weight, max_weight, risk_free, settings, run_on
                )
        except CryptoAnalyticsError as exc:
            if isinstance(exc, queries.DashboardError):
                raise
            st.error(str(exc), icon=":material/error:")
        else:
            st.caption(
                f"{result.days} days of returns from {result.window_start} to {result.window_end} "
                f"(window before {result.run_date}), risk-free rate {result.risk_free_rate:.2%}."
            )
            for note in result.notes:
                st.info(note, icon=":material/info:")
            left, right = st.columns([3, 2])
            with left:
                st.plotly_chart(
                    charts.frontier_chart(result.cloud, result.frontier, result.portfolios),
                    width="stretch",
                    key="whatif_chart",
                )
            with right:
                table = (
                    result.weights.pivot(
                        index="symbol", columns="strategy", values="weight"
                    ).fillna(0)
                    * 100
                )
                st.dataframe(table.round(2), width="stretch")
                st.dataframe(
                    result.portfolios.assign(expected_return=result.portfolios["expected_return"] * 100, volatility=result.portfolios["volatility"] * 100),
                    hide_index=True,
                    width="stretch",
                    column_config={
                        "expected_return": st.column_config.NumberColumn("return %", format="%.1f"),
                        "volatility": st.column_config.NumberColumn("vol %", format="%.1f"),
                        "sharpe": st.column_config.NumberColumn("Sharpe", format="%.2f"),
                    },
                )  # fmt: skip
