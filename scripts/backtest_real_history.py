"""Walk-forward backtest on real daily history (the README's table): `python scripts/backtest_real_history.py`.

Prices: Yahoo Finance daily closes from ../shared/data/daily/yahoo_budydeveloper (one consistent
source, to 2025-02-20; see ../shared/data/SOURCES.md): the 12 tokens of our universe it has
usable prices for. Left out, with the reason: LTC (not in the universe); UNI (the file's UNI-USD
is not Uniswap: it trades near 0.0003 USD throughout, where Uniswap traded 3 to 40 USD, with a
one-day 15,740x spike on 2022-10-21); SHIB (closes rounded to 1e-6 USD, one or two significant
digits, so its daily returns are rounding steps of 50-100 %). Cleaning of the rest, stated so the
figures can be checked: each token's first 7 days are dropped (Yahoo's listing-day rows, e.g.
AAVE 0.52 then 53.15). Gaps stay gaps: the backtest flags held tokens without a price (stale
days) and never fills them.

Everything else is the platform's configuration (config/config.yaml `portfolio:`): 365-day
window, 180 days of history to be eligible, historical mean and Ledoit-Wolf, bounds and category
caps, 10 bp costs, weekly Monday rebalancing, the BTC buy-and-hold benchmark.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date
from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDER = SHARED / "daily" / "yahoo_budydeveloper"
LISTING_DAYS_DROPPED = 7
UNUSABLE = {"UNI", "SHIB"}


def load_prices(folder: Path, universe: set[str]) -> pd.DataFrame:
    """Daily closes, cleaned as the module docstring says (rows days, columns symbols)."""
    closes = {}
    for path in sorted(folder.glob("*-USD_1d.csv")):
        symbol = path.name.split("-")[0]
        if symbol not in universe or symbol in UNUSABLE:
            continue
        frame = pd.read_csv(path, parse_dates=["datetime"], index_col="datetime")
        close = frame["close"].astype(float)
        closes[symbol] = close[close > 0].iloc[LISTING_DAYS_DROPPED:]
    prices = pd.DataFrame(closes).sort_index()
    prices.index = pd.DatetimeIndex(prices.index).normalize()
    return prices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2021, 1, 4))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 2, 19))
    parser.add_argument("--folder", type=Path, default=FOLDER)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("crypto_ml.portfolio.optimizers").setLevel(logging.ERROR)

    from crypto_ml.portfolio.backtest import walk_forward
    from crypto_ml.portfolio.constraints import constraints_from_settings

    from crypto_analytics.config import get_settings

    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder} not found: this script needs ../shared/data")
    settings = get_settings()
    config = settings.portfolio
    prices = load_prices(args.folder, {t.symbol for t in settings.tokens})
    tokens = [settings.token(s) for s in prices.columns]
    result = walk_forward(
        prices,
        tokens,
        config,
        constraints_from_settings(config, settings.tokens),
        args.start,
        args.end,
        benchmark_symbol=config.backtest.benchmark_symbol,
    )
    first = result.metrics[0]
    print(
        f"{len(tokens)} tokens ({', '.join(prices.columns)}), {first.start_date} to "
        f"{first.end_date}, weekly rebalancing, {config.transaction_cost_bps:g} bp costs, "
        f"risk-free {config.risk_free_rate:.0%}\n"
    )
    print("| strategy | total return | CAGR | volatility | Sharpe | Sortino | max drawdown | turnover | costs | fallbacks |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in sorted(result.metrics, key=lambda m: -(m.sharpe or -99)):
        print(
            f"| {m.strategy} | {m.total_return:.0%} | {m.cagr:.1%} | {m.volatility:.1%} | "
            f"{m.sharpe:.2f} | {m.sortino:.2f} | {m.max_drawdown:.1%} | {m.turnover:.1f} | "
            f"{m.costs:.2%} | {m.fallbacks} |"
        )
    stale = max(m.stale_days for m in result.metrics)
    print(f"\nstale-price days (a held token without a close): at most {stale} per strategy")


if __name__ == "__main__":
    main()
