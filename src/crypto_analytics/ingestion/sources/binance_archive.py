"""Deep candle history from Binance's public archive, data.binance.vision.

Why a second Binance source: the REST API gives 1000 candles a request (weight-limited and
geoblocked in the US), while the archive serves whole months as zips with published SHA-256
checksums, from any location. Whole months come from monthly files; the rest of the window
(partial months, the current month, a month whose file is not out yet) from daily files.

Each zip is verified against its `.CHECKSUM` before it is parsed and kept as a raw payload. A
period the archive has not published (before listing, not yet released) answers 404 and is
skipped with a log line: the gap stays visible instead of failing the whole backfill.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pandas as pd
import requests

from crypto_analytics.config import Settings, Token
from crypto_analytics.errors import BadPayload, SourceError
from crypto_analytics.ingestion import http
from crypto_analytics.ingestion.frames import Dataset, conform, empty_frame
from crypto_analytics.ingestion.sources.base import Capabilities, FetchResult, RawPayload, Source
from crypto_analytics.ingestion.sources.binance_format import parse_klines, read_kline_csv
from crypto_analytics.intervals import check_window, interval_length

log = logging.getLogger(__name__)

#: Monthly files appear a few days after the month ends; until then its daily files stand in.
MONTHLY_PUBLICATION_LAG = timedelta(days=7)


@dataclass(frozen=True)
class ArchiveFile:
    """One zip of the archive: a month or a day of one symbol's candles at one interval."""

    kind: Literal["monthly", "daily"]
    period: str  # YYYY-MM or YYYY-MM-DD
    url: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def first_day(self) -> date:
        return date.fromisoformat(self.period + "-01" if self.kind == "monthly" else self.period)

    @property
    def last_day(self) -> date:
        first = self.first_day
        if self.kind == "daily":
            return first
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def archive_url(
    base_url: str, market: str, kind: str, symbol: str, interval: str, period: str
) -> str:
    """`{base}/data/{market}/{kind}/klines/{SYM}/{interval}/{SYM}-{interval}-{period}.zip`."""
    return (
        f"{base_url.rstrip('/')}/data/{market}/{kind}/klines/{symbol}/{interval}/"
        f"{symbol}-{interval}-{period}.zip"
    )


def archive_files(
    base_url: str,
    market: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    today: date,
) -> list[ArchiveFile]:
    """The zips covering [start, end): monthly for whole past months, daily for the rest.

    A month counts as whole when the window touches its first and last day (the rows are
    filtered to the window afterwards); the current month never is, having no file yet.
    """
    first_day = start.astimezone(UTC).date()
    last_day = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    files: list[ArchiveFile] = []
    day = first_day
    while day <= last_day:
        month_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        whole = day.day == 1 and month_end <= last_day
        past = (day.year, day.month) < (today.year, today.month)
        if whole and past:
            period = f"{day:%Y-%m}"
            files.append(
                ArchiveFile(
                    "monthly",
                    period,
                    archive_url(base_url, market, "monthly", symbol, interval, period),
                )
            )
            day = month_end + timedelta(days=1)
            continue
        period = day.isoformat()
        files.append(
            ArchiveFile(
                "daily", period, archive_url(base_url, market, "daily", symbol, interval, period)
            )
        )
        day += timedelta(days=1)
    return files


def verify_checksum(name: str, content: bytes, checksum_file: bytes) -> None:
    """Check a zip against its `.CHECKSUM` (`<sha256>  <file name>`); BadPayload names the file."""
    fields = checksum_file.decode("utf-8", errors="replace").split()
    expected = fields[0].lower() if fields else ""
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise BadPayload(
            "binance_archive", f"{name}.CHECKSUM is not '<sha256>  <name>': {fields!r:.120}"
        )
    if len(fields) > 1 and fields[1] != name:
        raise BadPayload("binance_archive", f"{name}.CHECKSUM is for another file: {fields[1]}")
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise BadPayload(
            "binance_archive",
            f"{name} failed its checksum: sha256 {actual}, published {expected} "
            f"({len(content)} bytes received)",
        )


def read_archive_zip(name: str, content: bytes) -> bytes:
    """The CSV inside an archive zip (named like the zip; else its only CSV member)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise BadPayload("binance_archive", f"{name} is not a valid zip: {exc}") from exc
    with archive:
        members = archive.namelist()
        wanted = name.removesuffix(".zip") + ".csv"
        csvs = [m for m in members if m.endswith(".csv")]
        member = wanted if wanted in members else (csvs[0] if len(csvs) == 1 else None)
        if member is None:
            raise BadPayload("binance_archive", f"{name} holds no single CSV (members: {members})")
        try:
            return archive.read(member)
        except (zipfile.BadZipFile, OSError) as exc:
            raise BadPayload("binance_archive", f"{name}: cannot read {member}: {exc}") from exc


class BinanceArchiveSource(Source):
    """OHLCV backfill from data.binance.vision zips (`sources.binance_archive`)."""

    name = "binance_archive"
    # data.binance.vision publishes every interval of the platform's vocabulary
    capabilities = Capabilities(datasets=frozenset({Dataset.OHLCV}), token_key="exchange")

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`clock` decides which months count as published (tests pin it)."""
        super().__init__(settings)
        self.config = settings.sources.binance_archive
        self._session = session or requests.Session()
        self._recorder = http.ResponseRecorder(self._session)
        self._clock = clock or (lambda: datetime.now(UTC))

    def intervals(self) -> list[str]:
        """The archive mirrors the exchange's pairs, so it backfills the exchange's intervals."""
        return list(self.settings.sources.exchange.intervals)

    def fetch_ohlcv(
        self, token: Token, interval: str, start: datetime, end: datetime
    ) -> FetchResult:
        """Candles with open time in [start, end) from verified archive zips."""
        pair = token.source_id("exchange")
        interval_length(interval)
        check_window(start, end)
        base, _, quote = pair.partition("/")
        symbol = f"{base}{quote}"
        now = self._clock()
        pending = archive_files(
            self.config.base_url, self.config.market, symbol, interval, start, end, now.date()
        )

        frames: list[pd.DataFrame] = []
        payloads: list[RawPayload] = []
        skipped: list[str] = []
        while pending:
            file = pending.pop(0)
            content = self._download(file.url)
            if content is None:
                if file.kind == "monthly" and now.date() - file.last_day <= MONTHLY_PUBLICATION_LAG:
                    log.info("%s: %s not out yet; using its daily files", self.name, file.name)
                    pending[0:0] = self._dailies(file, symbol, interval, start, end)
                    continue
                log.info(
                    "%s: %s not published (HTTP 404: before listing or not released yet); skipped",
                    self.name,
                    file.name,
                )
                skipped.append(file.period)
                continue
            checksum = self._download(file.url + ".CHECKSUM")
            if checksum is None:
                raise BadPayload(self.name, f"{file.name} has no published .CHECKSUM to verify it")
            verify_checksum(file.name, content, checksum)
            payloads.append(
                RawPayload(body=content, request=file.url, media_type="application/zip")
            )
            rows = read_kline_csv(read_archive_zip(file.name, content), source=self.name)
            frames.append(
                parse_klines(
                    rows,
                    symbol=token.symbol,
                    interval=interval,
                    quote_currency=quote,
                    source_api=self.source_api,
                    source=self.name,
                )
            )

        frame = pd.concat(frames, ignore_index=True) if frames else empty_frame(Dataset.OHLCV)
        frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
        frame = frame.drop_duplicates(subset=["timestamp"], keep="first").sort_values("timestamp")
        log.info(
            "%s %s %s: %d candles from %d files (%d periods not published: %s)",
            self.name,
            symbol,
            interval,
            len(frame),
            len(payloads),
            len(skipped),
            ", ".join(skipped) or "none",
        )
        return FetchResult(self.source_api, Dataset.OHLCV, conform(frame, Dataset.OHLCV), payloads)

    def _dailies(
        self, month: ArchiveFile, symbol: str, interval: str, start: datetime, end: datetime
    ) -> list[ArchiveFile]:
        """The daily files standing in for a monthly file that is not out yet."""
        first = max(start, datetime.combine(month.first_day, datetime.min.time(), UTC))
        last = min(
            end, datetime.combine(month.last_day + timedelta(days=1), datetime.min.time(), UTC)
        )
        # planning "as of" the month itself makes every day of it a daily file
        return archive_files(
            self.config.base_url, self.config.market, symbol, interval, first, last, month.first_day
        )

    def _download(self, url: str) -> bytes | None:
        """The body at url (retried like every source), or None when the archive answers 404."""

        def attempt() -> bytes | None:
            self._recorder.clear()
            try:
                response = http.get(
                    self._session,
                    url,
                    source=self.name,
                    timeout=self.settings.ingestion.http_timeout_seconds,
                )
            except SourceError as exc:
                last = self._recorder.last
                if type(exc) is SourceError and last is not None and last.status == 404:
                    return None
                raise
            return response.content

        return http.call_with_retries(attempt, source=self.name, config=self.settings.ingestion)
