"""Land stream candles exactly as batch ingestion does: raw lake, validation, the bronze loader.

Why the same path: a streamed candle, the same candle from the REST backfill and the same candle
from the bronze DAG share one natural key (source_api, symbol, interval, timestamp), so the
loader's `insert … on conflict do nothing` makes them one row whichever arrives first, and a
replay of the lake rebuilds bronze with the stream's rows too. The raw messages of a
micro-batch are kept byte for byte (with their receive times) as one JSON payload in the lake.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import psycopg

from crypto_analytics.config import Settings
from crypto_analytics.errors import CryptoAnalyticsError, LoadError
from crypto_analytics.ingestion import lake, loader
from crypto_analytics.ingestion.frames import Dataset
from crypto_analytics.ingestion.reports import BatchReport
from crypto_analytics.ingestion.sources.base import FetchResult, RawPayload
from crypto_analytics.ingestion.validation import validate
from crypto_analytics.streaming.klines import Kline, klines_frame
from crypto_analytics.streaming.subscriptions import Subscription
from crypto_analytics.warehouse import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Landed:
    """What one batch did, plus the newest candle per token it carried (for the heartbeat)."""

    report: BatchReport
    landed_at: datetime
    newest: Mapping[str, tuple[datetime, float]]  # symbol -> (open time, close)
    frame: pd.DataFrame


def raw_payload(
    klines: Sequence[Kline],
    received: Mapping[tuple[str, int], datetime],
    request: str,
    malformed: Sequence[tuple[str, datetime, str]] = (),
) -> RawPayload:
    """The batch's messages exactly as received, with receive times, as one JSON document (so the
    lake can checksum it). Malformed messages received meanwhile ride along with their error."""
    messages: list[dict[str, object]] = [
        {"received_at": received[k.key].isoformat() if k.key in received else None, "raw": k.raw}
        for k in klines
    ]
    messages += [
        {"received_at": at.isoformat(), "raw": raw, "error": error} for raw, at, error in malformed
    ]
    document = {"source": "websocket", "request": request, "messages": messages}
    times = [*received.values(), *(at for _, at, _ in malformed)]
    return RawPayload(
        body=json.dumps(document, ensure_ascii=False).encode(),
        request=request,
        media_type="application/json",
        received_at=max(times, default=datetime.now(UTC)),
    )


class CandleSink:
    """Writes batches for one stream on one warehouse connection (reopened after a failure).

    Thread-safe: the consumer flushes micro-batches and backfills from worker threads."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        *,
        source_api: str,
        interval: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.url = url
        self.source_api = source_api
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, autocommit=True)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def write_klines(
        self,
        klines: Sequence[Kline],
        subscriptions: Mapping[str, Subscription],
        received: Mapping[tuple[str, int], datetime],
        request: str,
        malformed: Sequence[tuple[str, datetime, str]] = (),
    ) -> Landed:
        """One micro-batch of closed stream candles (and the malformed messages seen with them)."""
        frame = klines_frame(klines, subscriptions, self.source_api)
        payload = raw_payload(klines, received, request, malformed)
        result = FetchResult(self.source_api, Dataset.OHLCV, frame, [payload])
        return self.write(result, {"feed": "stream", "stream": request})

    def write(self, result: FetchResult, meta: Mapping[str, object]) -> Landed:
        """Lake, validation and the loader's one transaction; LoadError (nothing landed) if not."""
        frame = result.frame
        batch_id = uuid.uuid4()
        request_meta = {"interval": self.interval, **meta}
        if len(frame):
            request_meta.setdefault("start", frame["timestamp"].min().to_pydatetime())
            request_meta.setdefault("end", frame["timestamp"].max().to_pydatetime())
        with self._lock:
            batch = lake.write_batch(result, batch_id, self.settings, request_meta=request_meta)
            checked = validate(frame, Dataset.OHLCV, self.settings, now=self._clock())
            try:
                report = loader.load_batch(
                    self._connection(),
                    batch_id=batch_id,
                    source_api=result.source_api,
                    dataset=Dataset.OHLCV,
                    interval=self.interval,
                    valid=checked.valid,
                    rejected=checked.rejected,
                    raw_payload_path=str(lake.manifest_path(batch, self.settings)),
                    window_start=batch.window_start,
                    window_end=batch.window_end,
                )
            except (CryptoAnalyticsError, psycopg.Error) as exc:
                if self._conn is not None and (self._conn.closed or self._conn.broken):
                    self._conn = None
                raise LoadError(f"stream batch {batch_id}: {exc}") from exc
        landed_at = datetime.now(UTC)
        newest: dict[str, tuple[datetime, float]] = {}
        valid = checked.valid
        if len(valid):
            last = valid.sort_values("timestamp").groupby("symbol", observed=True).tail(1)
            for symbol, at, close in zip(
                last["symbol"], last["timestamp"], last["close"], strict=True
            ):
                newest[str(symbol)] = (pd.Timestamp(at).to_pydatetime(), float(close))
        log.info(
            "%s %s: batch %s landed %d new, %d duplicate, %d quarantined",
            self.source_api,
            self.interval,
            batch_id,
            report.rows_inserted,
            report.rows_duplicate,
            report.rows_quarantined,
        )
        return Landed(report=report, landed_at=landed_at, newest=newest, frame=valid)
