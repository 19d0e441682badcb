"""Training with a real MLflow tracking server (started here, not mocked): every family logged and
registered, the champion rule applied to real registry versions, forecasts and drift written.

The server's backend store is a fresh database on the test PostgreSQL server and its artifacts a
temporary folder, as `make mlflow` runs it against the warehouse server.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from crypto_ml.mlflow_tracking import SERVER_ENV, sqlalchemy_url
from forecast_testdata import load_stand_in_mart, random_walk_features
from psycopg import sql

from crypto_analytics.warehouse import url_for_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRICE_FAMILIES = {"naive", "drift", "prophet", "lstm", "gbm", "ensemble"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on a fresh database of the test server; yields its URL."""
    server = os.environ.get("CRYPTO_DATABASE_URL")
    if not server:
        pytest.skip("CRYPTO_DATABASE_URL is not set: the MLflow store needs a real PostgreSQL")
    name = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    artifacts = tmp_path_factory.mktemp("mlflow_artifacts")
    port = _free_port()
    log_path = artifacts / "server.log"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", sqlalchemy_url(url_for_database(server, name)),
        "--artifacts-destination", artifacts.as_uri(),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **SERVER_ENV},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
        shutil.rmtree(artifacts, ignore_errors=True)


@pytest.fixture
def tracked(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's registered models and experiments on the server (names of its own)."""
    from crypto_analytics.config import get_settings

    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("CRYPTO_ML__MLFLOW__REGISTERED_MODEL", f"price-{tag}")
    monkeypatch.setenv("CRYPTO_ML__MLFLOW__VOLATILITY_MODEL", f"volatility-{tag}")
    monkeypatch.setenv("CRYPTO_ML__MLFLOW__EXPERIMENT_PREFIX", f"test-{tag}")
    get_settings.cache_clear()
    return tag


def _rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_training_registers_every_family_and_decides_the_champion(
    warehouse_url, fast_ml_env, tracked, mlflow_server
):
    import mlflow
    from crypto_ml.forecasting.pipeline import predict, run_training

    load_stand_in_mart(warehouse_url, random_walk_features(["BTC", "ETH"], 400, stablecoin="USDT"))
    _, summary = run_training()
    assert summary is not None
    assert set(summary.versions) == PRICE_FAMILIES | {"garch"}
    client = mlflow.MlflowClient(mlflow_server)
    name = f"price-{tracked}"
    for family in PRICE_FAMILIES:
        version = client.get_model_version_by_alias(name, f"latest-{family}")
        assert version.tags["family"] == family
        assert float(version.tags["validation_mae_h1"]) > 0
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.tags["family"] == summary.champion
    assert champion.version == summary.champion_version
    # the decision and its numbers: in the warehouse and on the candidate's run
    (decision,) = _rows(warehouse_url, "select candidate_model, candidate_score, naive_score, "
                                       "n_points, promoted, reason from ml.champion_decisions")  # fmt: skip
    candidate, score, naive, n_points, promoted, reason = decision
    assert naive == pytest.approx(1.0) and n_points > 0 and promoted  # the first champion
    assert f"{score:.4f}" in reason
    run = client.get_run(summary.run_ids[candidate])
    assert run.data.tags["crypto.champion_decision"] == reason
    assert {"mase_h1", "coverage_80_h7", "fit_seconds"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_card.md", "backtest_metrics.csv", f"forecast_{candidate}.png"} <= artifacts
    card = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                    artifact_path="model_card.md")).read_text()  # fmt: skip
    assert "Walk-forward backtest: 2 folds" in card and "## Known limits" in card
    # where the ensemble's radii came from, per horizon, and by how much they were widened
    ensemble = client.get_run(summary.run_ids["ensemble"]).data.params
    assert {"calibration_h1", "calibration_h7", "calibration_h30"} <= set(ensemble)
    assert re.fullmatch(r"(validation|random_walk|none) x\d\.\d{3} \(\d+ scores over [\d.]+ periods\)",
                        ensemble["calibration_h30"])  # fmt: skip
    # Prophet's native per-token models, in the prophet experiment (not the default one)
    prophet = client.get_run(summary.run_ids["prophet"])
    # the production fit's factors on the random walk's radii (never below 1)
    scales = {k: float(v) for k, v in prophet.data.params.items() if k.startswith("interval_scale")}
    assert set(scales) == {"interval_scale_h1", "interval_scale_h7", "interval_scale_h30"}
    assert min(scales.values()) >= 1.0
    children = client.search_runs(
        [prophet.info.experiment_id], f"tags.mlflow.parentRunId = '{prophet.info.run_id}'"
    )
    assert sorted(c.data.tags["crypto.symbol"] for c in children) == ["BTC", "ETH"]
    linked = _rows(warehouse_url, "select count(*) from ml.model_evaluation where run_id is null")
    assert linked == [(0,)]

    # forecasts from the registry: 3 tokens for the baselines and the ensemble, 2 for the rest
    first = predict()
    assert first.predictions == 3 * 3 * 3 + 2 * 3 * 3
    by_model = dict(_rows(warehouse_url, "select model, bool_and(is_champion) "
                                         "from ml.price_predictions group by model"))  # fmt: skip
    assert by_model == {f: f == summary.champion for f in PRICE_FAMILIES}
    second = predict()
    assert second.predictions == first.predictions
    assert _rows(warehouse_url, "select count(*) from ml.price_predictions") == [
        (first.predictions,)
    ]
    assert first.volatility_forecasts == 2 * 3 * 2  # GARCH and the rolling baseline
    assert not first.drift

    # the champion's last 25 one-day forecasts were twice the realised close: drift, an alert
    as_of = pd.Timestamp(first.as_of)
    closes = _rows(warehouse_url, "select symbol, date, close from gold.token_daily_features "
                                  "where symbol = 'BTC' and date > %s", (as_of - timedelta(days=25),))  # fmt: skip
    with psycopg.connect(warehouse_url) as conn:
        for symbol, day, close in closes:
            conn.execute(
                "insert into ml.price_predictions (as_of_date, symbol, horizon_days, target_date, "
                "model, point, model_version) values (%s, %s, 1, %s, %s, %s, 'old')",
                (day - timedelta(days=1), symbol, day, summary.champion, close * 2),
            )
    drifted = predict()
    assert drifted.drift
    ((is_drift, ratio, requested),) = _rows(
        warehouse_url,
        "select is_drift, error_ratio, retraining_requested from ml.model_drift "
        "where horizon_days = 1",
    )
    assert is_drift and requested and ratio > 1.5


def test_champion_moves_only_for_a_candidate_that_beats_champion_and_naive(
    tracked, mlflow_server, tmp_path
):
    import mlflow
    from crypto_ml.forecasting import registry
    from crypto_ml.forecasting.baselines import RandomWalkModel
    from crypto_ml.forecasting.pyfunc import Bundle, PriceForecaster, save_bundle

    client = mlflow.MlflowClient(mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    name = f"price-{tracked}"
    experiment = client.create_experiment(f"rule-{tracked}", artifact_location=tmp_path.as_uri())

    def night(families: list[str]) -> dict[str, str]:
        """Log and register one real (tiny) model per family, as a nightly training does."""
        versions = {}
        for family in families:
            bundle = save_bundle(Bundle(RandomWalkModel(family, ["BTC"], 60, False), [1]),
                                 str(tmp_path / f"{family}.pkl"))  # fmt: skip
            with mlflow.start_run(experiment_id=experiment) as run:
                info = mlflow.pyfunc.log_model(name="model", python_model=PriceForecaster(),
                                               artifacts={"fitted": bundle})  # fmt: skip
            versions[family] = registry.register(client, name, info.model_uri, run.info.run_id,
                                                 family, {"validation_mae_h1": "0.03"})  # fmt: skip
        return versions

    first = night(["naive", "lstm"])
    decision = registry.decide("lstm", {"lstm": 1.02, "naive": 1.0}, 90, None)
    assert registry.apply(client, name, decision, first) == first["naive"]
    champion = registry.current_champion(client, name)
    assert (champion.family, champion.version) == ("naive", first["naive"])
    assert champion.validation_mae == {1: 0.03}

    second = night(["naive", "lstm", "gbm"])
    decision = registry.decide("lstm", {"lstm": 0.97, "naive": 1.0}, 90, champion.family)
    registry.apply(client, name, decision, second)
    assert client.get_model_version_by_alias(name, "champion").version == second["lstm"]

    third = night(["naive", "lstm", "gbm"])
    decision = registry.decide("gbm", {"gbm": 0.98, "lstm": 0.97, "naive": 1.0}, 90, "lstm")
    registry.apply(client, name, decision, third)
    champion = registry.current_champion(client, name)
    assert (champion.family, champion.version) == ("lstm", third["lstm"])  # kept, refreshed
    assert not decision.promoted
    for family, version in third.items():
        assert client.get_model_version_by_alias(name, f"latest-{family}").version == version
