"""Benchmark the offline synthetic market (`make bench`): how long its windows take, printed.

The market is generated top-down (daily candles, each finer interval refined from the next
coarser one), so a window should cost what it asks for, not the history behind it:

  1. the demo's load: 38 tokens × 730 daily candles plus 38 tokens × 60 days of hourly ones;
  2. the stream's kind of window: 1-minute candles of the last few hours for 38 tokens
     (goal: instant, well under a second);
  3. the whole daily history since sources.synthetic.start for 38 tokens (no finer interval is
     generated for it).

Each figure is the full `fetch_ohlcv` for every token (generation, the normalised frame and the
raw JSON payload the lake keeps), the median of --repeat runs, wall clock in this process. Printing them is the point: speed is never asserted in the tests.
Needs no database.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crypto_analytics.config import get_settings
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--minute-hours", type=int, default=4, help="hours of 1m candles")
    args = parser.parse_args()

    settings = get_settings()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    source = SyntheticSource(settings, clock=lambda: now)
    tokens = settings.tokens
    origin = source.origin
    cases = [
        ("demo daily: 730 days", "1d", now - timedelta(days=730), now),
        ("demo hourly: 60 days", "1h", now - timedelta(days=60), now),
        (f"1m: last {args.minute_hours} h", "1m", now - timedelta(hours=args.minute_hours), now),
        (f"daily history since {origin.date()}", "1d", origin, now),
    ]
    print(f"synthetic market, {len(tokens)} tokens, median of {args.repeat} runs")
    print(f"{'window':<32} {'candles':>9} {'seconds':>9}")
    for label, interval, start, end in cases:

        def fetch(interval: str = interval, start: datetime = start, end: datetime = end) -> int:
            return sum(len(source.fetch_ohlcv(t, interval, start, end).frame) for t in tokens)

        seconds = _median_seconds(fetch, args.repeat)
        print(f"{label:<32} {fetch():>9} {seconds:>9.3f}")


if __name__ == "__main__":
    main()
