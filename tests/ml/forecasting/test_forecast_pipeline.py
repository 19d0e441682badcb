"""The backtest pipeline on a warehouse: bad gold gives clear errors, odd tokens are logged skips,
metrics land in schema ml once per as-of day however often it runs.

These run `ml evaluate` (no MLflow); training with the registry is in test_forecast_registry.py.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import psycopg
import pytest
from crypto_ml.errors import NotEnoughData
from crypto_ml.forecasting.pipeline import KEEP_RUNS, prepare_training, run_training
from forecast_testdata import load_stand_in_mart, random_walk_features
from typer.testing import CliRunner

from crypto_analytics.cli import app

pytestmark = pytest.mark.integration


def _rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_gold_not_built_or_empty_is_one_clear_line(warehouse_url, fast_ml_env):
    runner = CliRunner()
    missing = runner.invoke(app, ["ml", "evaluate"])
    assert missing.exit_code == 1
    assert "error: gold.token_daily_features does not exist" in missing.output
    load_stand_in_mart(warehouse_url, random_walk_features(["BTC"], 0))
    empty = runner.invoke(app, ["ml", "evaluate"])
    assert empty.exit_code == 1
    assert "error: gold.token_daily_features is empty" in empty.output
    assert len(empty.output.strip().splitlines()) == 1
    bad_date = runner.invoke(app, ["ml", "train", "--as-of", "yesterday"])
    assert bad_date.exit_code == 1 and "--as-of 'yesterday' is not a date" in bad_date.output
    unknown = runner.invoke(app, ["ml", "evaluate", "--symbol", "NOPE"])
    assert unknown.exit_code == 1 and "unknown symbol 'NOPE'" in unknown.output


def test_a_filter_that_finds_nothing_says_what_gold_holds(warehouse_url, fast_ml_env):
    load_stand_in_mart(warehouse_url, random_walk_features(["BTC"], 400, stablecoin="USDT"))
    runner = CliRunner()
    early = runner.invoke(app, ["ml", "evaluate", "--as-of", "2000-01-01"])
    assert early.exit_code == 1
    assert (
        "error: gold.token_daily_features has no rows up to 2000-01-01: it holds 2 token(s) "
        "from 2023-01-01 to 2024-02-04"
    ) in early.output
    absent = runner.invoke(app, ["ml", "evaluate", "--symbol", "ETH"])
    assert absent.exit_code == 1
    assert "error: gold.token_daily_features has no rows for ['ETH']" in absent.output
    # a stablecoin alone: baselines and the ensemble, no volatility model, a table all the same
    stable = runner.invoke(app, ["ml", "evaluate", "--symbol", "USDT"])
    assert stable.exit_code == 0, stable.output
    assert "naive" in stable.output and "QLIKE" not in stable.output


def test_too_little_history_for_one_fold_is_a_clear_error(warehouse_url, fast_ml_env):
    load_stand_in_mart(warehouse_url, random_walk_features(["BTC"], 80))
    with pytest.raises(NotEnoughData, match="at most 80 daily closes.*needs about"):
        prepare_training()


def test_a_plan_for_an_earlier_day_survives_the_pruning_of_old_runs(
    warehouse_url, fast_ml_env, tmp_path
):
    load_stand_in_mart(warehouse_url, random_walk_features(["BTC"], 400))
    runs = tmp_path / "ml" / "runs"
    later = [runs / f"2030-01-0{n}_old" for n in range(1, KEEP_RUNS + 2)]
    for folder in later:  # runs for later days, made before this one
        folder.mkdir(parents=True)
    plan = prepare_training(as_of=date(2023, 12, 1))
    assert plan.is_file() and (plan.parent / "features.parquet").is_file()
    kept = sorted(p.name for p in runs.iterdir())
    assert plan.parent.name in kept and len(kept) == KEEP_RUNS
    assert not later[0].exists() and later[-1].exists()  # the least recently made went


@pytest.mark.slow
def test_one_token_a_stablecoin_and_nan_closes(warehouse_url, fast_ml_env):
    features = random_walk_features(["BTC"], 400, stablecoin="USDT", gap=("BTC", "2023-11-01", 2))
    features.loc[features.sample(5, random_state=1).index, "close"] = np.nan  # NaN rows: gaps
    load_stand_in_mart(warehouse_url, features)
    run_training(register=False)
    per_model = dict(
        _rows(
            warehouse_url,
            "select model, count(distinct symbol) from ml.model_evaluation "
            "where fold = 0 group by model",
        )  # fmt: skip
    )
    assert per_model == {
        "naive": 2, "drift": 2, "prophet": 1, "lstm": 1, "gbm": 1, "ensemble": 2,
        "garch": 1, "rolling_30d": 1,
    }  # fmt: skip
    folds = _rows(
        warehouse_url, "select distinct fold from ml.model_evaluation where model = 'lstm'"
    )
    assert sorted(f for (f,) in folds) == [0, 1, 2]
    skips = _rows(warehouse_url, "select model, symbol, reason from ml.model_skips order by 1")
    assert {(m, s) for m, s, _ in skips} == {("garch", "USDT"), ("gbm", "USDT"), ("lstm", "USDT"),
                                            ("prophet", "USDT")}  # fmt: skip
    assert all("stablecoin (pegged)" in reason for _, _, reason in skips)
    importance = _rows(warehouse_url, "select count(*) from ml.feature_importance")[0][0]
    assert importance > 0
    count = _rows(warehouse_url, "select count(*) from ml.model_evaluation")[0][0]
    run_training(register=False)  # a rerun for the same as-of day
    assert _rows(warehouse_url, "select count(*) from ml.model_evaluation")[0][0] == count
    # the gold views read the same rows
    gold = _rows(warehouse_url, "select count(*) from ml.model_evaluation")
    assert gold[0][0] == count
