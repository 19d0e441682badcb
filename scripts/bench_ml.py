"""Benchmark forecasting (`make bench`): the nightly training and the prediction refresh, timed.

Goals (issue 6): the nightly training of the 38-token universe, every model and fold, under 15
minutes on 2 cores; a prediction refresh under 30 s. On a scratch database of the warehouse
server (`<warehouse db>_ml_bench`, dropped afterwards) the offline synthetic market for the whole
universe (--days of daily candles, 3 years by default) is ingested and built by dbt (not timed),
then the training runs stage by stage as the ml_training DAG runs it (one job after another, as
the `ml_training` pool's single slot does), with the configured `ml:` settings, MLflow into a
temporary SQLite store. Printed: each family's fits, fit and forecast seconds (backtest folds and
the production fit together), each stage, the total, and the refresh (median of --refresh runs).

Wall-clock figures depend on what else the machine runs; CPU seconds of this process are printed
beside them (with ml.threads = 1 the CPU time is close to what a quiet machine's wall time is).
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scratch_database import scratch_database

log = logging.getLogger("bench_ml")


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def populate(url: str, days: int) -> None:
    """The synthetic market of the whole universe, ingested, and gold built for forecasting."""
    from crypto_analytics.dbt_runner import run_dbt
    from crypto_analytics.ingestion.pipeline import ingest, plan_requests

    now = datetime.now(UTC)
    ingest(
        plan_requests(
            sources=["synthetic"], intervals=["1d"], datasets=["ohlcv", "market"],
            since=now - timedelta(days=days), until=now,
        )
    )  # fmt: skip
    run_dbt(["build", "--quiet", "--select", "+token_daily_features", "path:models/gold/forecasting",
             "--indirect-selection", "cautious"], url=url)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1095, help="Days of synthetic daily history.")
    parser.add_argument("--refresh", type=int, default=3, help="Prediction refreshes to time.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from crypto_ml.forecasting import pipeline

    from crypto_analytics.config import get_settings
    from crypto_analytics.warehouse import connection_params, database_url

    server = database_url()
    name = f"{connection_params(server)['dbname']}_ml_bench"
    work = Path(tempfile.mkdtemp(prefix="bench_ml_"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["CRYPTO_ML__WORK_DIR"] = str(work / "runs")
    os.environ["CRYPTO_ML__MLFLOW__ARTIFACTS_DIR"] = str(work / "artifacts")
    with scratch_database(server, name, keep=args.keep) as url:
        with Clock() as setup:
            populate(url, args.days)
        settings = get_settings()
        ml = settings.ml
        print(  # noqa: T201 - a benchmark prints its figures
            f"synthetic universe, {args.days} days, ingested and built in {setup.wall:.0f} s; "
            f"{ml.folds} folds x {ml.fold_days} days, horizons {ml.horizons}, threads {ml.threads}"
        )
        stages: dict[str, Clock] = {}
        with Clock() as stages["prepare"]:
            plan_path = pipeline.prepare_training(settings)
        plan = pipeline.Plan.load(plan_path)
        families: dict[str, list[float]] = {}
        with Clock() as stages["train jobs"]:
            for job in plan.jobs:
                with Clock() as clock:
                    result_path = pipeline.train_job(plan_path, job.label)
                with open(result_path, "rb") as handle:
                    timing = pickle.load(handle).timing
                row = families.setdefault(job.family, [0.0, 0.0, 0.0, 0.0, 0.0])
                row[0] += timing.fits
                row[1] += timing.fit_seconds
                row[2] += timing.predict_seconds
                row[3] += clock.wall
                row[4] += clock.cpu
        with Clock() as stages["evaluate (ensemble, metrics)"]:
            pipeline.evaluate_training(plan_path)
        with Clock() as stages["register (MLflow)"]:
            pipeline.register_training(plan_path)
        refreshes = []
        for _ in range(args.refresh):
            with Clock() as clock:
                summary = pipeline.predict(settings)
            refreshes.append(clock)
    tokens = len(plan.symbols)
    print(
        f"\n{'family':<10}{'fits':>6}{'fit s':>9}{'forecast s':>12}{'job wall s':>12}{'job CPU s':>11}"
    )  # noqa: T201
    for family, (fits, fit_s, predict_s, wall, cpu) in families.items():
        print(f"{family:<10}{int(fits):>6}{fit_s:>9.1f}{predict_s:>12.1f}{wall:>12.1f}{cpu:>11.1f}")  # noqa: T201
    total = sum(c.wall for c in stages.values())
    total_cpu = sum(c.cpu for c in stages.values())
    print()  # noqa: T201
    for stage, clock in stages.items():
        print(f"{stage:<32}{clock.wall:>9.1f} s wall {clock.cpu:>9.1f} s CPU")  # noqa: T201
    verdict = "met" if total < 15 * 60 else "NOT met"
    print(  # noqa: T201
        f"\nnightly training, {tokens} tokens: {total / 60:.1f} min wall ({total_cpu / 60:.1f} min "
        f"CPU); goal < 15 min: {verdict}"
    )
    wall = statistics.median(c.wall for c in refreshes)
    cpu = statistics.median(c.cpu for c in refreshes)
    verdict = "met" if wall < 30 else "NOT met"
    print(  # noqa: T201
        f"prediction refresh ({summary.predictions} price + {summary.volatility_forecasts} "
        f"volatility forecasts): {wall:.1f} s wall, {cpu:.1f} s CPU (median of {len(refreshes)}); "
        f"goal < 30 s: {verdict}"
    )


if __name__ == "__main__":
    main()
