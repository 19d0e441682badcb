"""Categories: the cap-weighted category indices (base 100) over time and sector performance
over a chosen period, with each token's market cap and return inside its category."""

from __future__ import annotations

import streamlit as st

import charts
import notices
import queries

PERIODS = {"1 day": ("return_1d", 1), "7 days": ("return_7d", 7), "30 days": ("return_30d", 30), "90 days": ("return_90d", 90), "365 days": ("return_365d", 365)}  # fmt: skip

st.title("Categories")

with notices.section():
    index = queries.require_rows(queries.category_index(), "category indices", queries.INGEST_HINT)
    st.plotly_chart(charts.category_index_chart(index), width="stretch", key="main_chart")
    st.caption(
        "Chain-linked market-cap-weighted index per category, 100 on its first day; days without market caps are equal-weighted (gold.category_metrics.weighting_method)."
    )

    label = (
        st.segmented_control("Period", list(PERIODS), default="30 days", key="category_period")
        or "30 days"
    )
    column, days = PERIODS[label]
    performance = queries.category_performance()
    left, right = st.columns([1, 1])
    with left:
        st.subheader(f"Sector performance, {label}")
        st.plotly_chart(
            charts.category_returns_chart(performance, column, label),
            width="stretch",
            key="sector_chart",
        )
        missing = performance.loc[performance[column].isna(), "category"].tolist()
        if missing:
            st.caption(
                f"No index level exactly {days} days back for: {', '.join(missing)} (history too short or a gap)."
            )
    with right:
        st.subheader("Market cap by token")
        tokens = queries.token_performance(days)
        st.plotly_chart(
            charts.market_cap_treemap(tokens, label), width="stretch", key="treemap_chart"
        )
    st.dataframe(
        performance.assign(**{c: performance[c] * 100 for c in ("return_1d", "return_7d", "return_30d", "return_90d", "return_365d")}),
        hide_index=True,
        width="stretch",
        column_config={
            "as_of": st.column_config.DateColumn("as of"),
            "index_level": st.column_config.NumberColumn("index", format="%.1f"),
            "volatility_30d": st.column_config.NumberColumn("vol 30 d (ann.)", format="%.2f"),
            "n_constituents": st.column_config.NumberColumn("tokens"),
            **{c: st.column_config.NumberColumn(c.replace("return_", "") + " %", format="%+.2f") for c in ("return_1d", "return_7d", "return_30d", "return_90d", "return_365d")},
        },
    )  # fmt: skip
