"""Price rules on the live stream: thresholds on the latest minute close, sub-day moves on the
stream's own recent candles, recorded and delivered by the same state machine and outbox.

Why a window of recent closes in memory: a 1 h move needs the close 60 minutes ago; keeping the
last few hours per token costs kilobytes and no query per minute. It is seeded from bronze (the
stream's own rows) when the stream starts, so a restart does not blind the move rules.
The rules file is re-read when it changes, so editing config/alerts.yaml needs no restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg

from crypto_analytics.alerts.delivery import DeliveryReport, available_channels, deliver_pending
from crypto_analytics.alerts.observations import Observation
from crypto_analytics.alerts.price import (
    Move,
    PricePoint,
    move_observations,
    threshold_observations,
)
from crypto_analytics.alerts.rules import (
    PriceMoveRule,
    PriceThresholdRule,
    RuleSet,
    load_rules,
    rules_path,
)
from crypto_analytics.alerts.state import RecordResult, record_observations
from crypto_analytics.config import Settings
from crypto_analytics.ingestion.frames import BRONZE_TABLE, Dataset
from crypto_analytics.intervals import interval_length
from crypto_analytics.warehouse import connect

log = logging.getLogger(__name__)

#: Closes kept per token beyond the longest window (a few late or missing minutes).
_SLACK = 5


class LiveAlerts:
    """Evaluates the stream-measured price rules after each landed micro-batch."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        *,
        source_api: str,
        interval: str,
        where: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.url = url
        self.source_api = source_api
        self.interval = interval
        self.step = interval_length(interval)
        self.where = where
        self._clock = clock
        self._path: Path = rules_path(settings)
        self._mtime: float | None = None
        self.ruleset = RuleSet()
        self.closes: dict[str, dict[datetime, float]] = {}
        self._conn: psycopg.Connection | None = None
        self.reload()

    # --- rules ---------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the rules file if it changed; a broken edit keeps the previous rules."""
        try:
            mtime = self._path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime and self._mtime is not None:
            return False
        try:
            self.ruleset = load_rules(self.settings)
        except Exception as exc:  # noqa: BLE001 - a typo in the file must not stop the stream
            log.error("alert rules not reloaded, keeping the previous ones: %s", exc)
            self._mtime = mtime
            return False
        self._mtime = mtime
        log.info("stream alerts: %d price rules", len(self.rules))
        return True

    @property
    def rules(self) -> list[PriceThresholdRule | PriceMoveRule]:
        out: list[PriceThresholdRule | PriceMoveRule] = []
        for rule in self.ruleset.enabled:
            if isinstance(rule, PriceThresholdRule) or (
                isinstance(rule, PriceMoveRule) and rule.on_stream
            ):
                out.append(rule)
        return out

    @property
    def keep(self) -> int:
        windows = [r.window for r in self.rules if isinstance(r, PriceMoveRule)]
        longest = max(windows, default=timedelta(0))
        return int(longest / self.step) + _SLACK

    # --- prices --------------------------------------------------------------------------------

    def remember(self, frame: pd.DataFrame) -> None:
        """Add landed candles (open time -> close) to each token's window, newest `keep` kept."""
        if frame.empty:
            return
        keep = max(self.keep, 2)
        touched: set[str] = set()
        for symbol, at, close in zip(
            frame["symbol"], frame["timestamp"], frame["close"], strict=True
        ):
            self.closes.setdefault(str(symbol), {})[pd.Timestamp(at).to_pydatetime()] = float(close)
            touched.add(str(symbol))
        for symbol in touched:
            series = self.closes[symbol]
            if len(series) > keep:
                for old in sorted(series)[: len(series) - keep]:
                    del series[old]

    def seed(self, symbols: list[str]) -> None:
        """Fill the windows from the stream's own rows in bronze (after a restart)."""
        if not self.rules or self.keep <= _SLACK:
            return
        since = self._clock() - self.step * self.keep
        rows = (
            self._connection()
            .execute(
                f"""
            select "timestamp", symbol, close from {BRONZE_TABLE[Dataset.OHLCV]}
            where source_api = %s and interval = %s and symbol = any(%s) and "timestamp" >= %s
            order by "timestamp"
            """,  # noqa: S608 - table name from frames.BRONZE_TABLE, values bound
                (self.source_api, self.interval, symbols, since),
            )
            .fetchall()
        )
        if rows:
            self.remember(pd.DataFrame(rows, columns=["timestamp", "symbol", "close"]))

    def latest(self) -> dict[str, PricePoint]:
        out = {}
        for symbol, series in self.closes.items():
            if series:
                at = max(series)
                out[symbol] = PricePoint(series[at], at + self.step)
        return out

    def moves(self, rule: PriceMoveRule) -> dict[str, Move | None]:
        """Each token's latest close against the close exactly `window` earlier (None if that
        candle is missing: a gap is never bridged)."""
        out: dict[str, Move | None] = {}
        for symbol in rule.symbols or sorted(self.closes):
            series = self.closes.get(symbol)
            if not series:
                continue
            end_at = max(series)
            start_at = end_at - rule.window
            start = series.get(start_at)
            out[symbol] = (
                None
                if start is None
                else Move(
                    PricePoint(start, start_at + self.step),
                    PricePoint(series[end_at], end_at + self.step),
                )
            )
        return out

    # --- evaluate and deliver ------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.url, autocommit=True)
        return self._conn

    def observations(self) -> list[Observation]:
        out: list[Observation] = []
        latest = self.latest()
        for rule in self.rules:
            if isinstance(rule, PriceThresholdRule):
                wanted = {s: p for s, p in latest.items() if s in rule.symbols}
                if wanted:  # tokens this stream does not carry are left to gold
                    found = threshold_observations(rule, wanted, self.where)
                    out += [o for o in found if o.subject in wanted]
            else:
                moves = self.moves(rule)
                if moves:
                    out += move_observations(rule, moves, self.where)
        return out

    def evaluate(self) -> RecordResult:
        """Judge the price rules on the current windows and record what changed."""
        self.reload()
        observations = self.observations()
        if not observations:
            return RecordResult()
        return record_observations(
            self._connection(),
            observations,
            {rule.id: rule for rule in self.ruleset.rules},
            now=self._clock(),
            evaluated_by="stream",
            available_channels=available_channels(self.settings),
        )

    def deliver(self) -> DeliveryReport:
        return deliver_pending(self._connection(), self.settings, now=self._clock())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
