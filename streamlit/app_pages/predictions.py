"""Price predictions: actual closes against each model's forecasts with 80/95 % bands, the
walk-forward metrics (MASE against the naive forecast, interval coverage), the champion with a
link to its MLflow run, feature importance and the champion's drift check."""

from __future__ import annotations

import os
from datetime import timedelta

import pandas as pd
import streamlit as st

from crypto_analytics.config import Settings, get_settings

import charts
import notices
import queries

HISTORY_DAYS = 180
settings = get_settings()

st.title("Price predictions")


def mlflow_ui(settings: Settings) -> str:
    """Base URL of the MLflow UI: an http(s) tracking URI, else the configured local server."""
    for candidate in (os.environ.get("MLFLOW_TRACKING_URI"), settings.ml.mlflow.tracking_uri):
        if candidate and candidate.startswith(("http://", "https://")):
            return candidate.rstrip("/")
    return f"http://{settings.ml.mlflow.host}:{settings.ml.mlflow.port}"


def run_link(run_id: object) -> str | None:
    return f"{mlflow_ui(settings)}/#/runs/{run_id}" if isinstance(run_id, str) and run_id else None


with notices.section():
    available = queries.require_rows(
        queries.forecast_symbols(),
        "price forecasts",
        "run `crypto-analytics ml train` then `crypto-analytics ml predict` (the ml_training and "
        "ml_inference DAGs do it on schedule), or `make demo`",
    )
    symbols = sorted(available["symbol"].unique())
    left, middle, right = st.columns(3)
    symbol = left.selectbox("Token", symbols, index=symbols.index("BTC") if "BTC" in symbols else 0)
    horizons = sorted(available.loc[available["symbol"] == symbol, "horizon_days"].unique())
    horizon = (
        middle.segmented_control(
            "Horizon (days)", horizons, default=horizons[0], key="forecast_horizon"
        )
        or horizons[0]
    )
    newest = available.loc[available["symbol"] == symbol, "latest_as_of"].max()
    since = pd.Timestamp(newest).date() - timedelta(days=HISTORY_DAYS)
    predictions = queries.price_predictions(symbol, since)
    latest = predictions[predictions["as_of_date"] == newest]
    history = predictions[
        (predictions["horizon_days"] == horizon) & (predictions["as_of_date"] < newest)
    ]
    models = sorted(latest["model"].unique())
    champions = latest.loc[latest["is_champion"].fillna(False).astype(bool), "model"].unique()
    default_band = (
        champions[0] if len(champions) else ("ensemble" if "ensemble" in models else models[0])
    )
    banded = right.selectbox("Intervals of", models, index=models.index(default_band))
    actuals = queries.daily_closes((symbol,), since)  # the current day too: forecasts start there
    st.plotly_chart(charts.forecast_chart(actuals, latest, history, banded, int(horizon)), width="stretch", key="main_chart")  # fmt: skip
    st.caption(
        f"Each model's newest forecasts (as of the close of {newest}, every horizon) drawn from "
        f"that close; the shaded bands are {banded}'s central 80 % and 95 % intervals. Circles: "
        f"the models' earlier {horizon}-day forecasts on the day they forecast "
        f"({history['as_of_date'].nunique()} earlier origins in the last {HISTORY_DAYS} days; "
        "click a legend entry to show another model's)."
    )

    st.subheader("Walk-forward evaluation")
    evaluation = queries.model_evaluation(symbol, int(horizon))
    if evaluation.empty:
        st.caption("No backtest metrics for this token and horizon yet.")
    else:
        st.dataframe(
            evaluation.assign(champion=evaluation["model"].isin(champions), directional_accuracy=evaluation["directional_accuracy"] * 100, coverage_80=evaluation["coverage_80"] * 100, coverage_95=evaluation["coverage_95"] * 100),
            hide_index=True,
            width="stretch",
            column_config={
                "mase": st.column_config.NumberColumn("MASE", help="MAE / naive MAE: below 1 beats the random walk", format="%.3f"),
                "mae": st.column_config.NumberColumn("MAE", format="%.6g"),
                "rmse": st.column_config.NumberColumn("RMSE", format="%.6g"),
                "mape": st.column_config.NumberColumn("MAPE %", format="%.2f"),
                "directional_accuracy": st.column_config.NumberColumn("direction %", format="%.1f"),
                "coverage_80": st.column_config.NumberColumn("coverage 80 %", help="goal 80 ± 5", format="%.1f"),
                "coverage_95": st.column_config.NumberColumn("coverage 95 %", help="goal 95 ± 5", format="%.1f"),
                "width_80": st.column_config.NumberColumn("width 80", format="%.3f"),
                "width_95": st.column_config.NumberColumn("width 95", format="%.3f"),
                "run_id": None,
            },
        )  # fmt: skip
        st.caption(f"All folds pooled (fold 0), {int(evaluation['n_points'].max())} forecasts scored at most; as of {evaluation['as_of_date'].max()}.")  # fmt: skip

champion_column, importance_column = st.columns(2)
with champion_column:
    st.subheader("Champion")
    with notices.section():
        decisions = queries.champion_decisions(10)
        if decisions.empty:
            st.caption("No champion decision yet.")
        else:
            latest = decisions.iloc[0]
            holder = latest["candidate_model"] if latest["promoted"] else latest["champion_model"]
            version = (
                latest["candidate_version"] if latest["promoted"] else latest["champion_version"]
            )
            st.metric("Champion", f"{holder} v{version}", border=True)
            st.caption(
                f"{latest['as_of_date']}: {'promoted' if latest['promoted'] else 'kept'} — {latest['reason']}"
            )
            link = run_link(latest["run_id"])
            if link:
                st.link_button("Open its MLflow run", link, icon=":material/open_in_new:")
            st.dataframe(decisions.drop(columns=["run_id"]), hide_index=True, width="stretch")
    st.subheader("Drift")
    with notices.section():
        drift = queries.model_drift()
        if drift.empty:
            st.caption("No drift check yet.")
        else:
            for row in drift.itertuples():
                if row.is_drift:
                    st.error(f"{row.model} {row.horizon_days} d: realised error {row.error_ratio:.2f}× its validation error (threshold {row.threshold}).", icon=":material/trending_up:")  # fmt: skip
            st.dataframe(drift, hide_index=True, width="stretch")
with importance_column:
    st.subheader("Feature importance")
    with notices.section():
        importance = queries.feature_importance(int(st.session_state.get("forecast_horizon") or 1))
        if importance.empty:
            st.caption(
                "No feature importance for this horizon yet (the gradient-boosting model computes it)."
            )
        else:
            st.plotly_chart(
                charts.feature_importance_chart(importance), width="stretch", key="importance_chart"
            )
            st.caption(f"Permutation importance ({importance['scoring'].iloc[0]}, {int(importance['n_repeats'].iloc[0])} repeats), as of {importance['as_of_date'].iloc[0]}.")  # fmt: skip
