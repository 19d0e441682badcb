"""`crypto-analytics stream`: the real-time candle stream in the foreground.

Registered on the main app by crypto_analytics.cli; the stream's modules load only when it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer


def stream(
    feed: Annotated[
        str | None,
        typer.Option(
            help="binance, synthetic (offline), or auto: synthetic when the default sources are "
            '["synthetic"]. Default: stream.feed.'
        ),
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option("--symbol", help="Token to stream (repeatable); default: stream.symbols."),
    ] = None,
) -> None:
    """Stream closed 1-minute candles into bronze until Ctrl-C/SIGTERM (flushes on the way out).

    Reconnects with capped backoff, backfills missed minutes over REST, keeps stream.heartbeat
    current and evaluates the price alert rules on every micro-batch."""
    from crypto_analytics.streaming.service import run_stream

    run_stream(feed=feed, symbols=symbol)
