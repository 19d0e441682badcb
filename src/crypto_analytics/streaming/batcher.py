"""Closed candles wait here until a micro-batch is worth a bronze transaction.

Why micro-batches: one transaction (lake files, audit row, COPY, watermarks) per candle would
cost 38 transactions a minute for nothing; one per minute of all tokens costs one. A batch is
flushed as soon as every streamed token's candle for its newest minute is in (the usual case,
a second after the minute closes), at `batch_size` candles (a backfill burst), or when its oldest
candle has waited `flush_seconds` (a token that is late or silent never holds the others).

Repeated messages for a candle already pending are dropped here (identical) or counted as
conflicts (different values: the first received wins, as in bronze); across batches the loader's
`on conflict do nothing` makes every rerun and overlap idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from crypto_analytics.streaming.klines import Kline

log = logging.getLogger(__name__)


class MicroBatcher:
    """Pending closed candles keyed by (market, open time)."""

    def __init__(
        self,
        *,
        markets: Iterable[str],
        batch_size: int,
        flush_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.markets = frozenset(markets)
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._pending: dict[tuple[str, int], Kline] = {}
        self._since: float | None = None
        self.duplicates = 0
        self.conflicts = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, kline: Kline) -> bool:
        """Queue a closed candle; False when that candle is already pending."""
        existing = self._pending.get(kline.key)
        if existing is not None:
            if existing.same_values(kline):
                self.duplicates += 1
            else:
                self.conflicts += 1
                log.warning(
                    "%s %d: a second, different close message (kept the first): %s",
                    kline.market,
                    kline.open_time_ms,
                    kline.raw[:160],
                )
            return False
        if not self._pending:
            self._since = self._clock()
        self._pending[kline.key] = kline
        return True

    def _newest_minute_complete(self) -> bool:
        newest = max(open_ms for _, open_ms in self._pending)
        have = {market for market, open_ms in self._pending if open_ms == newest}
        return self.markets <= have

    def due(self) -> bool:
        """Whether the pending candles should be flushed now."""
        if not self._pending:
            return False
        if len(self._pending) >= self.batch_size:
            return True
        assert self._since is not None
        if self._clock() - self._since >= self.flush_seconds:
            return True
        return self._newest_minute_complete()

    def seconds_until_due(self) -> float | None:
        """How long until the age limit makes the batch due (None when empty)."""
        if self._since is None or not self._pending:
            return None
        return max(0.0, self.flush_seconds - (self._clock() - self._since))

    def take(self) -> list[Kline]:
        """Every pending candle, in (open time, market) order; the batcher is empty after."""
        batch = sorted(self._pending.values(), key=lambda k: (k.open_time_ms, k.market))
        self._pending.clear()
        self._since = None
        return batch

    def restore(self, klines: Iterable[Kline]) -> None:
        """Put back a batch that could not be written (it is retried with the next flush)."""
        for kline in klines:
            if kline.key not in self._pending:
                if not self._pending:
                    self._since = self._clock()
                self._pending[kline.key] = kline
