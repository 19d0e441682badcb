"""Alerts: the history of alert episodes with their state (open or resolved), the current state
of every rule and subject, and the rules that are active (config/alerts.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from crypto_analytics.config import get_settings
from crypto_analytics.errors import CryptoAnalyticsError

import charts
import notices
import queries

PERIODS = {"24 hours": 1, "7 days": 7, "30 days": 30, "90 days": 90}

st.title("Alerts")

with notices.section():
    label = (
        st.segmented_control(
            "Fired in the last", list(PERIODS), default="30 days", key="alert_period"
        )
        or "30 days"
    )
    since = (datetime.now(UTC) - timedelta(days=PERIODS[label])).date()
    history = queries.alert_history(since)
    if history.empty:
        st.success(f"No alert fired in the last {label}.", icon=":material/check_circle:")
    else:
        open_now = history["status"] == "firing"
        counts = st.columns(4)
        counts[0].metric("Episodes", len(history), border=True)
        counts[1].metric("Firing now", int(open_now.sum()), border=True)
        for column, severity in zip(counts[2:], ("critical", "warning"), strict=True):
            column.metric(severity, int((history["severity"] == severity).sum()), border=True)
        st.plotly_chart(
            charts.alert_timeline_chart(history, pd.Timestamp(since, tz="UTC")),
            width="stretch",
            key="main_chart",
        )
        st.dataframe(
            history,
            hide_index=True,
            width="stretch",
            column_config={
                "fired_at": st.column_config.DatetimeColumn("fired (UTC)", format="YYYY-MM-DD HH:mm"),
                "resolved_at": st.column_config.DatetimeColumn("resolved (UTC)", format="YYYY-MM-DD HH:mm"),
            },
        )  # fmt: skip

st.subheader("Rules now")
with notices.section():
    state = queries.alert_rule_state()
    if state.empty:
        st.info(
            "The alert engine has not evaluated any rule on this warehouse yet: "
            "`crypto-analytics alerts evaluate` (the gold DAG and the stream run it too).",
            icon=":material/hourglass_empty:",
        )
    else:
        firing = state[state["status"] == "firing"]
        st.caption(f"{len(firing)} of {len(state)} rule/subject pairs are firing.")
        st.dataframe(state, hide_index=True, width="stretch")

st.subheader("Active rules")
try:
    from crypto_analytics.alerts.rules import format_duration, load_rules, rules_path

    settings = get_settings()
    rules = load_rules(settings)
except CryptoAnalyticsError as exc:
    st.warning(f"The rules file cannot be read: {exc}", icon=":material/rule:")
else:
    rows = [
        {
            "id": rule.id,
            "type": rule.type,
            "severity": rule.severity,
            "enabled": rule.enabled,
            "what": rule.label,
            "symbols": ", ".join(getattr(rule, "symbols", []) or []) or "all",
            "cooldown": format_duration(rule.cooldown),
            "channels": ", ".join(rule.channels),
        }
        for rule in rules.rules
    ]
    st.caption(
        f"From `{rules_path(settings)}`: {len(rules.enabled)} of {len(rules.rules)} enabled."
    )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
