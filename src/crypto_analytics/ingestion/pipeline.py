"""Ingestion as three steps that Airflow tasks and the CLI share: plan, fetch to lake, load.

Why split at the lake: the fetch step's only output is files (raw payloads, normalised Parquet, a
manifest), so the load step can be retried, replayed or run elsewhere without touching the
network again, and an Airflow task hands the next one a path, never data through XCom.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from crypto_analytics.config import Settings, Token, get_settings
from crypto_analytics.errors import (
    BadPayload,
    ConfigError,
    CryptoAnalyticsError,
    DatasetNotSupported,
    HistoryLimitExceeded,
    SourceError,
    SymbolUnavailable,
)
from crypto_analytics.ingestion import audit, lake, loader, watermarks
from crypto_analytics.ingestion.frames import Dataset, parse_dataset
from crypto_analytics.ingestion.reports import (
    BadBatch,
    BatchReport,
    ReplayReport,
    Skip,
    SymbolFailure,
)
from crypto_analytics.ingestion.sources.base import FetchResult, Source
from crypto_analytics.ingestion.sources.registry import check_source_names, get_source, source_class
from crypto_analytics.ingestion.validation import validate
from crypto_analytics.intervals import floor_to_interval, interval_length
from crypto_analytics.utc import as_utc, parse_utc
from crypto_analytics.warehouse import connect, database_url

log = logging.getLogger(__name__)

#: Skips that are a fact about the source, not a failure: recorded in the audit as 'skipped'.
_SKIPPABLE = (SymbolUnavailable, DatasetNotSupported, HistoryLimitExceeded)


@dataclass(frozen=True)
class FetchRequest:
    """One unit of fetching: a source, a dataset, its symbols, an interval and a window [start, end)."""

    source: str
    dataset: Dataset
    symbols: tuple[str, ...]
    interval: str | None
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (Airflow XCom, logs)."""
        return {
            "source": self.source,
            "dataset": str(self.dataset),
            "symbols": list(self.symbols),
            "interval": self.interval,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FetchRequest:
        return cls(
            source=data["source"],
            dataset=Dataset(data["dataset"]),
            symbols=tuple(data["symbols"]),
            interval=data.get("interval"),
            start=parse_utc(data["start"], "request start"),
            end=parse_utc(data["end"], "request end"),
        )

    def describe(self) -> str:
        what = f"{self.dataset}/{self.interval}" if self.interval else str(self.dataset)
        who = ",".join(self.symbols) if len(self.symbols) <= 3 else f"{len(self.symbols)} symbols"
        return (
            f"{self.source} {what} {who} [{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M})"
        )


@dataclass(frozen=True)
class Plan:
    """What a run will fetch, what it deliberately leaves out and why, and which batches of
    earlier runs it found abandoned (still `running` past ingestion.stale_batch_minutes) and
    marked failed."""

    requests: list[FetchRequest]
    skipped: list[Skip] = field(default_factory=list)
    expired: list[uuid.UUID] = field(default_factory=list)


def served_tokens(
    source_name: str, tokens: list[Token], skipped: list[Skip] | None = None
) -> list[Token]:
    """Tokens the source can serve; each other one is added to `skipped` with its configured
    reason (and logged)."""
    key = source_class(source_name).capabilities.token_key
    if key is None:
        return list(tokens)
    served: list[Token] = []
    for token in tokens:
        try:
            token.source_id(key)
        except SymbolUnavailable as exc:
            log.info("%s", exc)
            reason = str(exc).removeprefix(f"{key}: ").removeprefix(f"{token.symbol} skipped: ")
            if skipped is not None:
                skipped.append(Skip(source=source_name, what=token.symbol, reason=reason))
            continue
        served.append(token)
    return served


def _window(
    last: datetime | None,
    step: timedelta,
    since: datetime | None,
    until: datetime,
    settings: Settings,
) -> tuple[datetime, datetime] | None:
    """[start, end) to fetch: explicit `since`, else after the watermark, else the initial lookback."""
    if since is not None:
        start = since
    elif last is not None:
        start = last + step
    else:
        start = until - timedelta(days=settings.ingestion.initial_lookback_days)
    return (start, until) if start < until else None


def _unique(values: Sequence[str] | None) -> list[str] | None:
    """The values without repeats, in the order given (`--symbol BTC --symbol BTC` is BTC)."""
    return list(dict.fromkeys(values)) if values else None


def plan(
    sources: list[str] | None = None,
    symbols: list[str] | None = None,
    intervals: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    datasets: list[str] | None = None,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> Plan:
    """Everything that needs fetching, and what is left out and why.

    Without `since`, windows start after each watermark, so a rerun plans nothing new. Windows
    end at `until` (default now, and never later than now) and candle windows at the last candle
    closed by then. An explicit window (`since`) that holds no closed candle at all is a
    ConfigError saying why (in the future, or shorter than one candle). Repeated names count
    once. Batches of earlier runs still `running` past ingestion.stale_batch_minutes are marked
    failed first: their processes died (see audit.expire_stale_running).
    """
    settings = settings or get_settings()
    names = check_source_names(_unique(sources) or settings.ingestion.default_sources)
    # one token per symbol, however it was spelt or repeated (`--symbol BTC --symbol btc`)
    tokens = list({t.symbol: t for t in settings.select_tokens(_unique(symbols))}.values())
    wanted = {parse_dataset(d) for d in _unique(datasets) or []} or None
    for interval in _unique(intervals) or []:
        interval_length(interval)
    intervals = _unique(intervals)
    clock = as_utc(now) if now else datetime.now(UTC)
    since = as_utc(since) if since else None
    end = min(as_utc(until), clock) if until else clock
    if since is not None:
        _check_explicit_window(since, as_utc(until) if until else None, clock)

    skipped: list[Skip] = []
    requests: list[FetchRequest] = []
    with connect(database_url(settings)) as conn:
        expired = audit.expire_stale_running(
            conn, timedelta(minutes=settings.ingestion.stale_batch_minutes)
        )
        for name in names:
            source = get_source(name, settings)
            served = served_tokens(name, tokens, skipped)
            for dataset in sorted(source.datasets):
                if wanted is not None and dataset not in wanted:
                    continue
                marks = watermarks.get_watermarks(conn, source.source_api, str(dataset))
                requests.extend(
                    _plan_dataset(
                        source, dataset, served, intervals, marks, since, end, settings, skipped
                    )
                )
    if wanted is not None:
        for name in names:
            lacking = sorted(wanted - source_class(name).capabilities.datasets)
            for dataset in lacking:
                skipped.append(Skip(source=name, what=str(dataset), reason="not served here"))
    if since is not None and not requests:
        if skipped:
            reasons = "; ".join(skip.describe() for skip in skipped)
            raise ConfigError(f"nothing to fetch in the window: {reasons}")
        raise ConfigError(
            f"no closed candle opens in the window [{since:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) "
            f"UTC for interval(s) {', '.join(intervals or ['of the sources'])}: widen the window"
        )
    log.info("planned %d fetch requests (%d skipped)", len(requests), len(skipped))
    return Plan(requests, skipped, expired)


def _check_explicit_window(since: datetime, until: datetime | None, now: datetime) -> None:
    if until is not None and since >= until:
        raise ConfigError(
            f"--since {since:%Y-%m-%d %H:%M} must be before --until {until:%Y-%m-%d %H:%M}"
        )
    if since >= now:
        raise ConfigError(
            f"the window starting {since:%Y-%m-%d %H:%M} UTC lies entirely in the future "
            f"(now {now:%Y-%m-%d %H:%M} UTC): nothing has closed there yet"
        )


def plan_requests(
    sources: list[str] | None = None,
    symbols: list[str] | None = None,
    intervals: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    datasets: list[str] | None = None,
    settings: Settings | None = None,
) -> list[FetchRequest]:
    """The requests of `plan(...)` (for callers that need nothing else)."""
    return plan(sources, symbols, intervals, since, until, datasets, settings).requests


def _chunks(symbols: list[str], size: int) -> list[tuple[str, ...]]:
    """As few chunks as `size` allows, of sizes that differ by at most one (38 by 20: 19 + 19,
    not 20 + 18), so the requests of a window take about as long as each other."""
    count = -(-len(symbols) // size)
    base, extra = divmod(len(symbols), count) if count else (0, 0)
    chunks, start = [], 0
    for k in range(count):
        end = start + base + (1 if k < extra else 0)
        chunks.append(tuple(symbols[start:end]))
        start = end
    return chunks


def _plan_dataset(
    source: Source,
    dataset: Dataset,
    tokens: list[Token],
    intervals: list[str] | None,
    marks: dict[tuple[str, str], datetime],
    since: datetime | None,
    now: datetime,
    settings: Settings,
    skipped: list[Skip],
) -> list[FetchRequest]:
    planned: list[FetchRequest] = []
    per_request = min(
        settings.ingestion.symbols_per_request,
        source.capabilities.symbols_per_request or settings.ingestion.symbols_per_request,
    )
    if dataset is Dataset.OHLCV:
        for interval in intervals or source.intervals():
            try:
                source.check_interval(interval)
            except DatasetNotSupported as exc:
                reason = str(exc).removeprefix(f"{source.name}: ")
                skipped.append(Skip(source=source.name, what=f"{interval} candles", reason=reason))
                continue
            step = interval_length(interval)
            closed_until = floor_to_interval(now, interval)
            by_window: dict[tuple[datetime, datetime], list[str]] = {}
            for token in tokens:
                window = _window(
                    marks.get((token.symbol, interval)), step, since, closed_until, settings
                )
                if window:
                    by_window.setdefault(window, []).append(token.symbol)
            for window, symbols in by_window.items():
                for chunk in _chunks(symbols, per_request):
                    planned.append(FetchRequest(source.name, dataset, chunk, interval, *window))
    elif dataset is Dataset.MARKET:
        # One request for all tokens: CoinGecko serves many ids per call. It starts at the oldest
        # watermark so no token is left behind; overlap is absorbed by the loader's conflict rule.
        if tokens:
            lasts = [marks.get((t.symbol, "")) for t in tokens]
            oldest = None if any(m is None for m in lasts) else min(m for m in lasts if m)
            window = _window(oldest, timedelta(minutes=1), since, now, settings)
            if window:
                every = tuple(t.symbol for t in tokens)
                planned.append(FetchRequest(source.name, dataset, every, None, *window))
    elif dataset is Dataset.ORDERBOOK:
        # A snapshot is "now": the window only records when it was asked for.
        symbols = [t.symbol for t in tokens]
        for chunk in _chunks(symbols, per_request):
            planned.append(
                FetchRequest(source.name, dataset, chunk, None, now - timedelta(minutes=1), now)
            )
    return planned


def _combine(results: list[FetchResult]) -> FetchResult:
    """One lake batch from several symbols' results (they share source, dataset and window)."""
    apis = {r.source_api for r in results}
    if len(apis) > 1:
        raise SourceError(
            results[0].source_api, f"one request was served by several venues: {sorted(apis)}"
        )
    frames = [r.frame for r in results if not r.frame.empty]
    frame = pd.concat(frames, ignore_index=True) if frames else results[0].frame
    payloads = [p for r in results for p in r.payloads]
    return FetchResult(results[0].source_api, results[0].dataset, frame, payloads)


def _fetch_one(
    source: Source, request: FetchRequest, token: Token, settings: Settings
) -> FetchResult:
    if request.dataset is Dataset.OHLCV:
        assert request.interval is not None
        return source.fetch_ohlcv(token, request.interval, request.start, request.end)
    return source.fetch_orderbook(token, settings.sources.exchange.orderbook_depth)


def _record_symbol_failure(
    url: str, fields: dict[str, Any], symbol: str, error: str, *, skipped: bool
) -> None:
    """An audit row of its own for one symbol of a multi-symbol request that did not land."""
    own = {**fields, "batch_id": uuid.uuid4(), "symbols": [symbol]}
    with connect(url, autocommit=True) as conn:
        if skipped:
            audit.record_skipped(conn, **own, reason=error)
        else:
            audit.record_failed(conn, **own, error=error)


def _fetch(
    source: Source, request: FetchRequest, settings: Settings, url: str, fields: dict[str, Any]
) -> tuple[FetchResult, list[SymbolFailure]]:
    """Fetch a request; per symbol for candles and order books, so one symbol's failure keeps the
    others. Returns the combined result and the symbols that failed, each audited on its own row.
    When no symbol could be fetched it raises instead (the request's own audit row records it)."""
    tokens = [settings.token(s) for s in request.symbols]
    if request.dataset is Dataset.MARKET:
        return source.fetch_market_data(tokens, request.start, request.end), []
    results: list[FetchResult] = []
    skipped: list[tuple[str, Exception]] = []
    failed: list[tuple[str, Exception]] = []
    for token in tokens:
        try:
            results.append(_fetch_one(source, request, token, settings))
        except _SKIPPABLE as exc:
            log.warning("skipping %s for %s: %s", token.symbol, request.describe(), exc)
            skipped.append((token.symbol, exc))
        except Exception as exc:
            log.error("fetch failed for %s in %s: %s", token.symbol, request.describe(), exc)
            failed.append((token.symbol, exc))
    if not results:
        if len(failed) == 1:
            raise failed[0][1]
        if failed:
            raise SourceError(
                source.name,
                "every symbol failed: "
                + "; ".join(f"{symbol}: {type(e).__name__}: {e}" for symbol, e in failed),
            )
        raise skipped[0][1]
    for symbol, reason in skipped:
        _record_symbol_failure(url, fields, symbol, str(reason), skipped=True)
    failures = [
        SymbolFailure(symbol=symbol, error=f"{type(error).__name__}: {error}")
        for symbol, error in failed
    ]
    for failure in failures:
        _record_symbol_failure(url, fields, failure.symbol, failure.error, skipped=False)
    return _combine(results), failures


def fetch_to_lake(request: FetchRequest | dict[str, Any]) -> str | None:
    """Fetch one request and keep it in the lake; returns the manifest path, None when skipped.

    Symbols that fail are audited as failed and listed in the manifest (`fetch_failures`), so
    the load step reports them after landing the others; when every symbol fails the error is
    raised here, so the Airflow task fails visibly.
    """
    if isinstance(request, dict):
        request = FetchRequest.from_dict(request)
    settings = get_settings()
    source = get_source(request.source, settings)
    batch_id = uuid.uuid4()
    url = database_url(settings)
    batch_fields: dict[str, Any] = {
        "batch_id": batch_id,
        "source_api": source.source_api,
        "dataset": request.dataset,
        "symbols": list(request.symbols),
        "interval": request.interval,
        "window_start": request.start,
        "window_end": request.end,
    }
    with connect(url, autocommit=True) as conn:
        audit.start_batch(conn, **batch_fields)
    try:
        result, failures = _fetch(source, request, settings, url, batch_fields)
    except _SKIPPABLE as skipped:
        log.warning("skipping %s: %s", request.describe(), skipped)
        with connect(url, autocommit=True) as conn:
            audit.record_skipped(conn, **batch_fields, reason=str(skipped))
        return None
    except Exception as exc:
        log.error("fetch failed for %s: %s", request.describe(), exc)
        with connect(url, autocommit=True) as conn:
            audit.mark_failed(conn, batch_id, f"{type(exc).__name__}: {exc}")
        raise
    meta = {**request.to_dict(), "fetch_failures": [f.to_json() for f in failures]}
    batch = lake.write_batch(result, batch_id, settings, request_meta=meta)
    log.info("fetched %d rows for %s", len(result.frame), request.describe())
    return str(lake.manifest_path(batch, settings))


def load_from_lake(manifest_path: str | Path, *, now: datetime | None = None) -> BatchReport:
    """Validate a lake batch and land it in bronze in one transaction; returns its BatchReport.

    A batch that already landed is loaded as a reload under a batch id of its own (see
    audit.start_batch): its report's `replay_of` names the original. Raises BadPayload naming
    the file when the lake batch is corrupt, LoadError when it could not land.
    """
    settings = get_settings()
    batch, frame = lake.read_batch(Path(manifest_path))
    result = validate(frame, Dataset(batch.dataset), settings, now=now)
    with connect(database_url(settings), autocommit=True) as conn:
        report = loader.load_batch(
            conn,
            batch_id=batch.batch_id,
            source_api=batch.source_api,
            dataset=batch.dataset,
            interval=batch.interval,
            valid=result.valid,
            rejected=result.rejected,
            raw_payload_path=str(manifest_path),
            window_start=batch.window_start,
            window_end=batch.window_end,
        )
    failures = tuple(
        SymbolFailure.model_validate(f) for f in batch.request_meta.get("fetch_failures", [])
    )
    return report.model_copy(update={"symbols": tuple(batch.symbols), "fetch_failures": failures})


@dataclass(frozen=True)
class IngestResult:
    """What `ingest` did: the batches that landed and one line per request or symbol that failed."""

    reports: list[BatchReport]
    failures: list[str]

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as (reports, failures)."""
        return iter((self.reports, self.failures))

    @property
    def rows_inserted(self) -> int:
        return sum(r.rows_inserted for r in self.reports)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.reports)


def ingest(requests: Iterable[FetchRequest], *, progress: bool = False) -> IngestResult:
    """Run requests one after another (the CLI path): the batch reports and failure messages.

    One failing request never stops the others; the caller decides how to surface failures.
    """
    from tqdm import tqdm

    reports: list[BatchReport] = []
    failures: list[str] = []
    items = list(requests)
    for request in tqdm(items, desc="ingesting", unit="batch", disable=not progress):
        try:
            manifest = fetch_to_lake(request)
            if manifest is not None:
                report = load_from_lake(manifest)
                reports.append(report)
                failures.extend(
                    f"{request.describe()}: {f.symbol}: {f.error}" for f in report.fetch_failures
                )
        except Exception as exc:  # noqa: BLE001 - recorded in the audit, reported to the caller
            failures.append(f"{request.describe()}: {exc}")
    return IngestResult(reports, failures)


def replay(
    source: str | None = None, dataset: str | None = None, *, progress: bool = False
) -> ReplayReport:
    """Rebuild bronze from the lake with no network: every manifest loaded again, in fetch order.

    Loading is idempotent, so replaying onto a populated bronze inserts only what is missing, and
    each reload is audited on its own row. A corrupt or missing lake file, or a malformed
    manifest, costs only its own batch: every good batch is loaded, each bad one is audited as
    failed (when its manifest says which batch it is) and named by file in the report.
    """
    from tqdm import tqdm

    settings = get_settings()
    wanted = parse_dataset(dataset) if dataset is not None else None
    listing = lake.list_manifests(settings, source=source, dataset=wanted)
    if not listing.paths and not listing.unreadable and source is not None:
        held = lake.list_manifests(settings, dataset=wanted).source_apis
        if held and source not in held:
            raise ConfigError(
                f"the lake holds no batch of source {source!r}; it holds: {', '.join(held)}"
            )
    with connect(database_url(settings)) as conn:
        audit.expire_stale_running(conn, timedelta(minutes=settings.ingestion.stale_batch_minutes))
    loaded: list[BatchReport] = []
    bad = [
        BadBatch(manifest=str(path), batch_id=None, error=error)
        for path, error in listing.unreadable
    ]
    for path in tqdm(listing.paths, desc="replaying", unit="batch", disable=not progress):
        try:
            loaded.append(load_from_lake(path))
        except (BadPayload, CryptoAnalyticsError, OSError, ValueError) as exc:
            bad.append(_record_bad_batch(path, exc, settings))
    for entry in bad:
        log.error("replay: %s could not be loaded: %s", entry.manifest, entry.error)
    return ReplayReport(loaded=tuple(loaded), bad=tuple(bad))


def _record_bad_batch(path: Path, exc: Exception, settings: Settings) -> BadBatch:
    """Audit a lake batch that could not be loaded (a failed row of its own) and describe it."""
    error = f"{type(exc).__name__}: {exc}"
    try:
        batch = lake.load_manifest(path)
    except BadPayload:
        return BadBatch(manifest=str(path), batch_id=None, error=error)
    with connect(database_url(settings), autocommit=True) as conn:
        existing = audit.get_batch(conn, batch.batch_id)
        if existing is None or existing["status"] in audit.FINISHED:
            recorded = audit.record_failed(
                conn,
                batch_id=batch.batch_id,
                source_api=batch.source_api,
                dataset=batch.dataset,
                error=f"replay of {path}: {error}",
                symbols=batch.symbols,
                interval=batch.interval,
                window_start=batch.window_start,
                window_end=batch.window_end,
                lake_paths=[str(path)],
            )
        else:  # the batch's own load never finished: this replay's failure is its record
            audit.mark_failed(conn, batch.batch_id, f"replay of {path}: {error}")
            recorded = batch.batch_id
    return BadBatch(manifest=str(path), batch_id=recorded, error=error)
