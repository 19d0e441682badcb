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

By default four windows are backtested on the same load: the newest (the table above) and three
that end at the close of 2022, 2023 and 2024 (chosen as calendar year-ends before any was run,
not picked by their results); `--as-of DATE|latest` (repeatable) chooses others. Each date is
the last close the models may see (later rows are not read), so its folds lie in the 210 days
before it, and only tokens with enough history there take part (BTC, ETH, LINK and UNI in 2022
and early 2023). One window holds six 30-day periods, too few to judge a 30-day interval by, so
the script also prints MASE and coverage per window and their mean, and writes that summary to
data/ml/real_history_windows.md (each window's table to real_history_evaluation_<date>.md).
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
from scratch_database import scratch_database

log = logging.getLogger("evaluate_real_history")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDER = SHARED / "daily" / "binance_recent_rongyouwow"
LATEST = "latest"
DEFAULT_WINDOWS = ("2022-12-31", "2023-12-31", "2024-12-31", LATEST)


def window_end(text: str) -> date | None:
    """An --as-of value: a date, or `latest` (None: the newest close)."""
    if text == LATEST:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither YYYY-MM-DD nor {LATEST!r}") from None


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


def window_summary(windows: dict[date, pd.DataFrame]) -> str:
    """MASE and coverage per model and horizon, one column per window and their mean.

    The mean weighs windows alike: each holds the same number of periods whatever its tokens."""
    per_window = {
        as_of: metrics.loc[(metrics["fold"] == 0) & metrics["mase"].notna()]
        .groupby(["model", "horizon_days"])[["mase", "coverage_80", "coverage_95"]]
        .mean()
        for as_of, metrics in windows.items()
    }
    tokens = {
        as_of: metrics.loc[metrics["mase"].notna(), "symbol"].nunique()
        for as_of, metrics in windows.items()
    }
    keys: list[tuple[str, int]] = sorted(
        set().union(*(frame.index for frame in per_window.values()))
    )
    heads = [f"to {as_of} ({tokens[as_of]} tokens)" for as_of in per_window]
    lines = [
        "MASE · coverage 80 % / 95 % per window (means over the window's tokens, folds pooled):",
        "",
        "| model | h | " + " | ".join(heads) + " | mean of windows |",
        "|---|---:|" + "---:|" * (len(heads) + 1),
    ]

    def cell(row: pd.Series) -> str:
        return f"{row['mase']:.2f} · {row['coverage_80']:.3f} / {row['coverage_95']:.3f}"

    for model, h in keys:
        rows = [frame.loc[(model, h)] for frame in per_window.values() if (model, h) in frame.index]
        cells = [
            cell(frame.loc[(model, h)]) if (model, h) in frame.index else "–"
            for frame in per_window.values()
        ]
        mean = pd.DataFrame(rows).mean()
        lines.append(f"| {model} | {h} | " + " | ".join(cells) + f" | {cell(mean)} |")
    return "\n".join(lines)


def evaluate_window(as_of: date | None, started: float) -> tuple[str, pd.DataFrame, date]:
    """One walk-forward backtest ending at `as_of` (None: the newest close); its report."""
    from crypto_ml.forecasting.pipeline import load_evaluation, run_training

    window_started = time.perf_counter()
    plan_path, _ = run_training(register=False, as_of=as_of)
    evaluation = load_evaluation(plan_path)
    cutoffs = ", ".join(str(f.cutoff.date()) for f in evaluation.plan)
    header = (
        f"Real daily history to {evaluation.as_of.date()}, {len(evaluation.plan)} folds "
        f"(cut-offs {cutoffs}), evaluated in {time.perf_counter() - window_started:.0f} s "
        f"({time.perf_counter() - started:.0f} s since the script started)."
    )
    report = header + "\n\n" + markdown(evaluation.metrics) + "\n"
    return report, evaluation.metrics, evaluation.as_of.date()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument(
        "--as-of", type=window_end, action="append", dest="as_of", metavar="YYYY-MM-DD|latest",
        help=f"End a backtest window at this date (repeatable; default: {', '.join(DEFAULT_WINDOWS)}).",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("cmdstanpy", "prophet", "crypto_ml.forecasting.policy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder} is missing: this table needs ../shared/data")
    chosen = args.as_of or [window_end(w) for w in DEFAULT_WINDOWS]
    windows = sorted({w for w in chosen if w is not None}) + ([None] if None in chosen else [])

    from crypto_analytics.config import get_settings
    from crypto_analytics.dbt_runner import run_dbt
    from crypto_analytics.warehouse import connection_params, database_url

    server = database_url()
    name = f"{connection_params(server)['dbname']}_ml_eval"
    with scratch_database(server, name, keep=args.keep) as url:
        started = time.perf_counter()
        rows = load_bronze(url, args.folder)
        log.info("bronze: %d rows in %.1f s", rows, time.perf_counter() - started)
        run_dbt(["build", "--quiet"], url=url)
        log.info("silver and gold built at %.1f s", time.perf_counter() - started)
        out_dir = get_settings().resolve(Path("data/ml"))
        out_dir.mkdir(parents=True, exist_ok=True)
        results: dict[date, pd.DataFrame] = {}
        for as_of in windows:
            text, metrics, ended = evaluate_window(as_of, started)
            results[ended] = metrics
            suffix = "" if as_of is None else f"_{ended}"
            (out_dir / f"real_history_evaluation{suffix}.md").write_text(text)
            print(text)  # noqa: T201 - a script's report
        if len(results) > 1:
            summary = window_summary(results) + "\n"
            (out_dir / "real_history_windows.md").write_text(summary)
            print(summary)  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
