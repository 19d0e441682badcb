"""Schema ml: reruns replace rather than duplicate, and a failed write leaves nothing behind."""

from __future__ import annotations

from datetime import date

import pandas as pd
import psycopg
import pytest
from crypto_ml.forecasting import store
from crypto_ml.forecasting.policy import Skip

from crypto_analytics.warehouse import transaction

pytestmark = pytest.mark.integration

AS_OF = date(2025, 6, 30)


def _predictions(point: float = 100.0) -> pd.DataFrame:
    rows = []
    for symbol in ("BTC", "ETH"):
        for h in (1, 7, 30):
            rows.append({
                "as_of_date": AS_OF, "symbol": symbol, "horizon_days": h,
                "target_date": AS_OF + pd.Timedelta(days=h), "model": "naive", "point": point,
                "lower_80": point * 0.9, "upper_80": point * 1.1, "lower_95": point * 0.8,
                "upper_95": point * 1.2, "model_version": "1", "run_id": "r1", "is_champion": True,
            })  # fmt: skip
    return pd.DataFrame(rows)


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select count(*) from ml.{table}").fetchone()[0]


def test_predictions_are_idempotent_per_as_of_token_horizon_model(warehouse_url):
    with transaction(warehouse_url) as conn:
        store.upsert_predictions(conn, _predictions(100.0))
    with transaction(warehouse_url) as conn:
        store.upsert_predictions(conn, _predictions(101.0))
    assert _count(warehouse_url, "price_predictions") == 6
    with psycopg.connect(warehouse_url) as conn:
        points = conn.execute("select distinct point from ml.price_predictions").fetchall()
    assert points == [(101.0,)]


def test_a_bad_row_rolls_the_whole_stage_back(warehouse_url):
    bad = _predictions().assign(lower_80=lambda f: f["upper_80"] * 2)  # lower above upper
    with pytest.raises(psycopg.errors.CheckViolation):
        with transaction(warehouse_url) as conn:
            store.replace_skips(conn, AS_OF, "predict", [Skip("all", "BTC", "predict", "stale")])
            store.upsert_predictions(conn, bad)
    assert _count(warehouse_url, "model_skips") == 0
    assert _count(warehouse_url, "price_predictions") == 0


def test_evaluation_and_skips_of_an_as_of_day_are_replaced_as_a_set(warehouse_url):
    metrics = pd.DataFrame([
        {"as_of_date": AS_OF, "model": "naive", "symbol": s, "horizon_days": 1, "fold": f,
         "fold_cutoff": None if f == 0 else date(2025, 5, 1), "n_points": 10, "mae": 1.0,
         "mase": 1.0}
        for s in ("BTC", "ETH") for f in (0, 1)
    ])  # fmt: skip
    for column in store.EVALUATION_COLUMNS:
        if column not in metrics:
            metrics[column] = None
    with transaction(warehouse_url) as conn:
        store.replace_evaluation(conn, AS_OF, ["naive"], metrics)
        store.replace_skips(conn, AS_OF, "train", [Skip("lstm", "USDT", "train", "pegged")] * 2)
    with transaction(warehouse_url) as conn:  # a rerun where ETH dropped out
        store.replace_evaluation(conn, AS_OF, ["naive"], metrics.loc[metrics["symbol"] == "BTC"])
        store.replace_skips(conn, AS_OF, "train", [Skip("lstm", "USDT", "train", "pegged")])
    assert _count(warehouse_url, "model_evaluation") == 2
    assert _count(warehouse_url, "model_skips") == 1
