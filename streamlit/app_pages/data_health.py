"""Data health: how fresh each source is, gaps, quarantined rows and why, the latest ingestion
batches, dbt's test results and the real-time stream's heartbeat."""

from __future__ import annotations

import streamlit as st

import charts
import notices
import queries

st.title("Data health")

st.subheader("Freshness per source")
with notices.section():
    freshness = queries.require_rows(
        queries.source_freshness(), "ingestion batches", queries.INGEST_HINT
    )
    counts = freshness["freshness_status"].value_counts()
    columns = st.columns(5)
    for column, status in zip(
        columns, ("fresh", "late", "stale", "failing", "no_data"), strict=True
    ):
        column.metric(status.replace("_", " "), int(counts.get(status, 0)), border=True)
    late, stale = freshness[["late_after_hours", "stale_after_hours"]].iloc[0]
    st.plotly_chart(
        charts.freshness_chart(freshness, float(late), float(stale)),
        width="stretch",
        key="main_chart",
    )
    st.dataframe(
        freshness.drop(columns=["late_after_hours", "stale_after_hours"]),
        hide_index=True,
        width="stretch",
        column_config={
            "fetched_through": st.column_config.DatetimeColumn("fetched through", format="YYYY-MM-DD HH:mm"),
            "last_success_at": st.column_config.DatetimeColumn("last success", format="YYYY-MM-DD HH:mm"),
            "last_batch_at": st.column_config.DatetimeColumn("last batch", format="YYYY-MM-DD HH:mm"),
            "age_hours": st.column_config.NumberColumn("age h", format="%.1f"),
            "overdue_hours": st.column_config.NumberColumn("overdue h", format="%.1f"),
        },
    )  # fmt: skip

st.subheader("Tokens: freshness, gaps, outliers, quarantine")
with notices.section():
    quality = queries.token_quality()
    problems = quality[
        (quality["freshness_status"] != "fresh")
        | (quality["gap_count"] > 0)
        | (quality["quarantined_rows"] > 0)
    ]
    st.caption(
        f"{len(problems)} of {len(quality)} tokens are not fresh, have gaps or quarantined rows."
    )
    st.dataframe(
        quality,
        hide_index=True,
        width="stretch",
        column_config={
            "latest_close_at": st.column_config.DatetimeColumn("data as of", format="YYYY-MM-DD HH:mm"),
            "age_hours": st.column_config.NumberColumn("age h", format="%.1f"),
            "latest_deviation_bp": st.column_config.NumberColumn("CoinGecko vs close, bp", format="%.1f"),
            "max_abs_deviation_bp_30d": st.column_config.NumberColumn("max |dev| 30 d, bp", format="%.1f"),
        },
    )  # fmt: skip

gaps_column, quarantine_column = st.columns(2)
with gaps_column:
    st.subheader("Recent gaps")
    with notices.section():
        gaps = queries.recent_gaps(50)
        if gaps.empty:
            st.success("No missing candles in silver.", icon=":material/check_circle:")
        else:
            st.dataframe(gaps, hide_index=True, width="stretch")
with quarantine_column:
    st.subheader("Quarantine")
    with notices.section():
        reasons = queries.quarantine_reasons()
        if reasons.empty:
            st.success("No row has been quarantined.", icon=":material/check_circle:")
        else:
            st.metric("Rows quarantined", int(reasons["quarantined_rows"].sum()))
            st.dataframe(reasons, hide_index=True, width="stretch")

st.subheader("Recent batches")
with notices.section():
    batches = queries.recent_batches(50)
    failed = batches[batches["status"] == "failed"]
    if not failed.empty:
        st.error(
            f"{len(failed)} of the last {len(batches)} batches failed.", icon=":material/error:"
        )
    st.dataframe(
        batches,
        hide_index=True,
        width="stretch",
        column_config={
            "started_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "duration_seconds": st.column_config.NumberColumn("s", format="%.1f"),
        },
    )  # fmt: skip

st.subheader("dbt tests")
with notices.section():
    tests = queries.dbt_test_results()
    if tests.empty:
        st.info(
            "No dbt test has run on this warehouse yet: `crypto-analytics dbt build`.",
            icon=":material/hourglass_empty:",
        )
    else:
        outcome = tests["status"].value_counts()
        columns = st.columns(5)
        for column, status in zip(
            columns, ("pass", "warn", "fail", "error", "skipped"), strict=True
        ):
            column.metric(status, int(outcome.get(status, 0)), border=True)
        st.dataframe(
            tests,
            hide_index=True,
            width="stretch",
            column_config={"last_run_at": st.column_config.DatetimeColumn("last run (UTC)", format="YYYY-MM-DD HH:mm")},
        )  # fmt: skip

st.subheader("Real-time stream")
with notices.section():
    heartbeat = queries.stream_heartbeat()
    if heartbeat.empty:
        st.info(
            "The stream has not run on this warehouse: `crypto-analytics stream`.",
            icon=":material/hourglass_empty:",
        )
    else:
        down = heartbeat[~heartbeat["health"].isin(["live", "connecting", "starting"])]
        for row in down.itertuples():
            st.warning(f"Stream {row.stream_id}: {row.health}" + (f" ({row.last_error})" if row.last_error else ""), icon=":material/sensors_off:")  # fmt: skip
        st.dataframe(heartbeat, hide_index=True, width="stretch")
