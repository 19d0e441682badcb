"""Writes the forecasting results to schema `ml` (migration 0004); gold exposes them as views.

Why these rules: a rerun for the same as-of day must produce the same rows, not more of them, and
a stage must never leave half its output behind. Forecasts, volatility forecasts, drift checks and
decisions are upserted on their primary keys; backtest metrics, feature importance and skips of
an as-of day are replaced as a set (a token that dropped out does not leave stale rows). Every
function takes an open connection so the caller can commit a stage's writes in one transaction
(crypto_analytics.warehouse.transaction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from crypto_ml.forecasting.policy import Skip


def _value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return _value(value.item())
    return value


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    return [
        tuple(_value(v) for v in row) for row in frame.loc[:, list(columns)].itertuples(index=False)
    ]


def _insert(
    conn: psycopg.Connection,
    table: str,
    frame: pd.DataFrame,
    columns: Sequence[str],
    conflict: Sequence[str] | None = None,
    touch: str | None = None,
) -> int:
    """Insert `frame`'s `columns`; with `conflict`, update the other columns of existing keys
    (and set the timestamp column `touch` to now())."""
    if frame.empty:
        return 0
    statement = sql.SQL("insert into ml.{} ({}) values ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(", ").join(sql.Placeholder() for _ in columns),
    )
    if conflict:
        updates = [
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
            for c in columns
            if c not in conflict
        ]
        if touch:
            updates.append(sql.SQL("{} = now()").format(sql.Identifier(touch)))
        statement += sql.SQL(" on conflict ({}) do update set {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in conflict), sql.SQL(", ").join(updates)
        )
    with conn.cursor() as cur:
        cur.executemany(statement, _rows(frame, columns))
    return len(frame)


PREDICTION_COLUMNS = [
    "as_of_date", "symbol", "horizon_days", "target_date", "model", "point", "lower_80",
    "upper_80", "lower_95", "upper_95", "model_version", "run_id", "is_champion",
]  # fmt: skip
VOLATILITY_COLUMNS = [
    "as_of_date", "symbol", "horizon_days", "target_date", "model", "volatility_annualised",
    "variance_h", "model_version", "run_id",
]  # fmt: skip
EVALUATION_COLUMNS = [
    "as_of_date", "model", "symbol", "horizon_days", "fold", "fold_cutoff", "n_points", "mae",
    "rmse", "mape", "mase", "directional_accuracy", "coverage_80", "coverage_95", "width_80",
    "width_95", "interval_score_80", "interval_score_95", "pinball", "qlike", "run_id",
]  # fmt: skip
IMPORTANCE_COLUMNS = [
    "as_of_date", "model", "horizon_days", "feature", "importance_mean", "importance_std",
    "n_repeats", "scoring", "run_id",
]  # fmt: skip
DRIFT_COLUMNS = [
    "as_of_date", "model", "model_version", "horizon_days", "window_start", "window_end",
    "n_points", "realised_mae", "validation_mae", "error_ratio", "threshold", "is_drift",
    "retraining_requested",
]  # fmt: skip
DECISION_COLUMNS = [
    "as_of_date", "candidate_model", "candidate_version", "candidate_score", "champion_model",
    "champion_version", "champion_score", "naive_score", "n_points", "promoted", "reason", "run_id",
]  # fmt: skip


def upsert_predictions(conn: psycopg.Connection, frame: pd.DataFrame) -> int:
    """Price forecasts keyed by (as_of_date, symbol, horizon_days, model)."""
    return _insert(
        conn, "price_predictions", frame, PREDICTION_COLUMNS,
        conflict=["as_of_date", "symbol", "horizon_days", "model"], touch="created_at",
    )  # fmt: skip


def upsert_volatility(conn: psycopg.Connection, frame: pd.DataFrame) -> int:
    return _insert(
        conn, "volatility_forecasts", frame, VOLATILITY_COLUMNS,
        conflict=["as_of_date", "symbol", "horizon_days", "model"], touch="created_at",
    )  # fmt: skip


def replace_evaluation(
    conn: psycopg.Connection, as_of: date, models: Sequence[str], frame: pd.DataFrame
) -> int:
    """The backtest metrics of `models` for an as-of day, replaced as a set."""
    conn.execute(
        "delete from ml.model_evaluation where as_of_date = %s and model = any(%s)",
        (as_of, list(models)),
    )
    return _insert(conn, "model_evaluation", frame, EVALUATION_COLUMNS)


def set_evaluation_run(conn: psycopg.Connection, as_of: date, model: str, run_id: str) -> None:
    """Link an as-of day's metrics of a model to the MLflow run that logged them."""
    conn.execute(
        "update ml.model_evaluation set run_id = %s where as_of_date = %s and model = %s",
        (run_id, as_of, model),
    )
    conn.execute(
        "update ml.feature_importance set run_id = %s where as_of_date = %s and model = %s",
        (run_id, as_of, model),
    )


def replace_importance(conn: psycopg.Connection, as_of: date, frame: pd.DataFrame) -> int:
    models = sorted(frame["model"].unique()) if not frame.empty else []
    conn.execute(
        "delete from ml.feature_importance where as_of_date = %s and model = any(%s)",
        (as_of, models),
    )
    return _insert(conn, "feature_importance", frame, IMPORTANCE_COLUMNS)


def replace_skips(conn: psycopg.Connection, as_of: date, stage: str, skips: Sequence[Skip]) -> int:
    conn.execute("delete from ml.model_skips where as_of_date = %s and stage = %s", (as_of, stage))
    frame = pd.DataFrame(
        [(as_of, s.model, s.symbol, s.stage, s.reason) for s in skips],
        columns=["as_of_date", "model", "symbol", "stage", "reason"],
    ).drop_duplicates(["model", "symbol"], keep="last")
    return _insert(conn, "model_skips", frame, list(frame.columns))


def upsert_drift(conn: psycopg.Connection, frame: pd.DataFrame) -> int:
    return _insert(
        conn, "model_drift", frame, DRIFT_COLUMNS,
        conflict=["as_of_date", "model", "horizon_days"], touch="checked_at",
    )  # fmt: skip


def upsert_decision(conn: psycopg.Connection, frame: pd.DataFrame) -> int:
    return _insert(
        conn,
        "champion_decisions",
        frame,
        DECISION_COLUMNS,
        conflict=["as_of_date"],
        touch="decided_at",
    )
