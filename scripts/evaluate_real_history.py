"""The README's forecasting table on real daily history: `make ml-eval-real`.

Through the platform, on a scratch warehouse database (`<warehouse db>_ml_eval` on the warehouse
server, recreated each run): the daily Binance klines in ../shared/data/daily/binance_recent_rongyouwow
(13 tokens of the universe, all ending 2026-03-04: BTC and ETH from 2017-08, LINK 2019-01, UNI
2020-09, the other nine 1,000 days from 2023-06; see ../shared/data/SOURCES.md) are validated and
loaded into bronze by the ingestion loader as source `binance`, dbt builds silver and gold (the
feature mart included), and `crypto-analytics ml evaluate` runs the walk-forward backtest with the
configured settings (config/config.yaml `ml:`: 6 folds of 30 days, horizons 1/7/30). No market
data is loaded (the CoinGecko exports end before the backtest window), so the boosting model runs
without market cap. Prints the table (Markdown) and writes it to data/ml/real_history_evaluation.md.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

log = logging.getLogger("evaluate_real_history")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDER = SHARED / "daily" / "binance_recent_rongyouwow"


def load_bronze(url: str, folder: Path) -> int:
    """Each CSV as one validated, audited bronze batch (the ingestion loader); returns the rows."""
    from crypto_analytics.config import get_settings
    from crypto_analytics.ingestion import loader
    from crypto_analytics.ingestion.validation import validate

    settings = get_settings()
    universe = {t.symbol for t in settings.tokens}
    total = 0
    for path in sorted(folder.glob("*USDT_1d.csv")):
        symbol = path.name.removesuffix("USDT_1d.csv")
        if symbol not in universe:
            continue
        raw = pd.read_csv(path)
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(raw["timestamp"], utc=True),
                "symbol": symbol,
                "interval": "1d",
                "open": raw["open"].astype(float),
                "high": raw["high"].astype(float),
                "low": raw["low"].astype(float),
                "close": raw["close"].astype(float),
                "volume": raw["volume"].astype(float),
                "quote_volume": float("nan"),
                "quote_currency": "USDT",
                "source_api": "binance",
            }
        )
        result = validate(frame, "ohlcv", settings)
        with psycopg.connect(url, autocommit=True) as conn:
            report = loader.load_batch(
                conn, batch_id=uuid.uuid4(), source_api="binance", dataset="ohlcv",
                interval="1d", valid=result.valid, rejected=result.rejected,
                raw_payload_path=str(path),
            )  # fmt: skip
        total += report.rows_inserted
        log.info("%s: %d rows, %d quarantined", symbol, report.rows_inserted,
                     report.rows_quarantined)  # fmt: skip
    return total


def scratch_database(server_url: str, name: str) -> str:
    from crypto_analytics.config import get_settings
    from crypto_analytics.migrations.runner import init_database
    from crypto_analytics.warehouse import url_for_database

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = url_for_database(server_url, name)
    with psycopg.connect(url) as conn:
        init_database(conn, get_settings())
    return url


def markdown(metrics: pd.DataFrame) -> str:
    price = metrics.loc[(metrics["fold"] == 0) & metrics["mase"].notna()]
    table = price.groupby(["model", "horizon_days"]).agg(
        tokens=("symbol", "nunique"),
        mase=("mase", "mean"),
        beats_naive=("mase", lambda m: int((m < 1).sum())),
        mape=("mape", "mean"),
        directional=("directional_accuracy", "mean"),
        coverage_80=("coverage_80", "mean"),
        coverage_95=("coverage_95", "mean"),
        width_80=("width_80", "mean"),
        interval_score_95=("interval_score_95", "mean"),
    )
    lines = [
        "| model | h | tokens | MASE | tokens MASE < 1 | MAPE % | dir. acc. | cov. 80 % | "
        "cov. 95 % | width 80 % | int. score 95 % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (model, h), row in table.iterrows():
        direction = "–" if pd.isna(row["directional"]) else f"{row['directional']:.3f}"
        lines.append(
            f"| {model} | {h} | {row['tokens']} | {row['mase']:.3f} | {row['beats_naive']} | "
            f"{row['mape']:.2f} | {direction} | {row['coverage_80']:.3f} | "
            f"{row['coverage_95']:.3f} | {row['width_80']:.3f} | {row['interval_score_95']:.4f} |"
        )
    vol = metrics.loc[(metrics["fold"] == 0) & metrics["qlike"].notna()]
    if not vol.empty:
        lines += ["", "| volatility model | h | tokens | QLIKE (mean) |", "|---|---:|---:|---:|"]
        for (model, h), group in vol.groupby(["model", "horizon_days"]):
            lines.append(
                f"| {model} | {h} | {group['symbol'].nunique()} | {group['qlike'].mean():.4f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("cmdstanpy", "prophet", "crypto_ml.forecasting.policy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder} is missing: this table needs ../shared/data")

    import os

    from crypto_ml.forecasting.pipeline import load_evaluation, run_training

    from crypto_analytics.config import get_settings
    from crypto_analytics.dbt_runner import run_dbt
    from crypto_analytics.warehouse import connection_params, database_url

    server = database_url()
    name = f"{connection_params(server)['dbname']}_ml_eval"
    url = scratch_database(server, name)
    started = time.perf_counter()
    rows = load_bronze(url, args.folder)
    log.info("bronze: %d rows in %.1f s", rows, time.perf_counter() - started)
    run_dbt(["build", "--quiet"], url=url)
    log.info("silver and gold built at %.1f s", time.perf_counter() - started)
    previous = os.environ.get("CRYPTO_DATABASE_URL")
    os.environ["CRYPTO_DATABASE_URL"] = url
    get_settings.cache_clear()
    plan_path, _ = run_training(register=False)
    evaluation = load_evaluation(plan_path)
    table = markdown(evaluation.metrics)
    cutoffs = ", ".join(str(f.cutoff.date()) for f in evaluation.plan)
    header = (
        f"Real daily history to {evaluation.as_of.date()}, {len(evaluation.plan)} folds "
        f"(cut-offs {cutoffs}), evaluated in {time.perf_counter() - started:.0f} s."
    )
    text = header + "\n\n" + table + "\n"
    out = get_settings().resolve(Path("data/ml/real_history_evaluation.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)  # noqa: T201 - a script's report
    if previous is None:
        os.environ.pop("CRYPTO_DATABASE_URL")
    else:
        os.environ["CRYPTO_DATABASE_URL"] = previous
    if not args.keep:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
