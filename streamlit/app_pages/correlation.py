"""Correlation: the heatmap of daily log-return correlations over 30, 90 or 365 days, the
network of strongly correlated tokens on the market tree, and the 30-day rolling correlation of
chosen tokens against BTC and ETH over time (all from gold's correlation marts)."""

from __future__ import annotations

import streamlit as st

import charts
import notices
import queries

WINDOWS = (30, 90, 365)
DEFAULT_ROLLING = ("ETH", "SOL", "DOGE", "LINK")

st.title("Correlation")

with notices.section():
    window = (
        st.segmented_control("Window (days)", WINDOWS, default=90, key="correlation_window") or 90
    )
    matrix = queries.require_rows(
        queries.correlation_matrix(window),
        f"{window}-day correlations",
        f"{window} days of daily returns are needed; {queries.INGEST_HINT}",
    )
    universe = queries.token_intervals()
    order = (
        universe.assign(rank=universe["category"].map({c: i for i, c in enumerate(charts.CATEGORY_COLOURS)}))
        .sort_values(["rank", "symbol"])["symbol"]
        .tolist()
    )  # fmt: skip
    st.caption(
        f"Pearson correlation of daily log returns over the {window} days to "
        f"{matrix['window_end_date'].max()}; pairs sharing under 80 % of the window are left out "
        "(blank). Tokens grouped by category."
    )
    st.plotly_chart(charts.correlation_heatmap(matrix, order), width="stretch", key="main_chart")

    st.subheader("Network")
    threshold = st.slider("Edge when |ρ| is at least", 0.3, 0.95, 0.7, 0.05)
    nodes = queries.correlation_network(window)
    graph_column, table_column = st.columns([2, 1])
    with graph_column:
        st.plotly_chart(
            charts.correlation_network_chart(matrix, nodes, threshold),
            width="stretch",
            key="network_chart",
        )
        st.caption(
            "Grey: the minimum spanning tree of the distance √(2(1−ρ)) (each token's closest ties); red: every pair above the threshold. Node size: strongly correlated peers (|ρ| ≥ 0.7)."
        )
    with table_column:
        st.dataframe(
            nodes[["symbol", "category", "avg_correlation", "n_strong_peers", "most_correlated_peer", "max_correlation"]].sort_values("avg_correlation", ascending=False),
            hide_index=True,
            width="stretch",
            column_config={
                "avg_correlation": st.column_config.NumberColumn("mean ρ", format="%.2f"),
                "n_strong_peers": st.column_config.NumberColumn("strong peers"),
                "most_correlated_peer": st.column_config.TextColumn("closest"),
                "max_correlation": st.column_config.NumberColumn("ρ", format="%.2f"),
            },
        )  # fmt: skip

st.subheader("Rolling correlation against BTC and ETH")
with notices.section():
    symbols = queries.token_intervals()["symbol"].tolist()
    chosen = st.multiselect("Tokens", symbols, default=[s for s in DEFAULT_ROLLING if s in symbols])
    if chosen:
        rolling = queries.require_rows(
            queries.rolling_correlation(tuple(sorted(chosen))),
            "rolling correlations",
            f"30 days of daily returns are needed; {queries.INGEST_HINT}",
        )
        st.plotly_chart(
            charts.rolling_correlation_chart(rolling), width="stretch", key="rolling_chart"
        )
        st.caption(
            "30-day window, written only when the two tokens share at least 24 days with a return. Solid: against BTC; dotted: against ETH."
        )
    else:
        st.caption("Pick tokens to compare with BTC and ETH.")
