"""Candles and order books from a crypto exchange through ccxt (Binance by default).

Why ccxt: one unified API over ~100 venues, so switching `sources.exchange.exchange_id` is a
config change. Why Binance's raw klines endpoint on Binance: ccxt's unified candles drop the
quote volume (kline field 7), which silver needs for VWAP-style measures; other venues go through
the unified `fetch_ohlcv` and get NaN quote volume.

Every request goes through `http.call_with_retries`, with ccxt errors mapped to the platform's
(errors.py), and every response body is kept exactly as received (a requests hook on ccxt's
session) so bronze can be rebuilt offline. On HTTP 451 (Binance blocks US IPs, cloud CI included)
the same request is retried against `fallback_hosts`, then `fallback_exchange_id`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import numpy as np
import pandas as pd
import requests

from crypto_analytics.config import Settings, Token
from crypto_analytics.errors import (
    BadPayload,
    ConfigError,
    Geoblocked,
    RateLimited,
    SourceError,
    SourceUnavailable,
    SymbolUnavailable,
)
from crypto_analytics.ingestion.frames import Dataset, conform, empty_frame
from crypto_analytics.ingestion.http import (
    RecordedResponse,
    ResponseRecorder,
    call_with_retries,
    parse_retry_after,
    unreachable,
)
from crypto_analytics.ingestion.sources.base import Capabilities, FetchResult, RawPayload, Source
from crypto_analytics.ingestion.sources.binance_format import parse_klines
from crypto_analytics.intervals import interval_length

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ccxt ids whose spot klines endpoint returns Binance's 12-field rows (with quote volume).
BINANCE_KLINE_EXCHANGES = frozenset({"binance", "binanceus"})

ExchangeFactory = Callable[[str], ccxt.Exchange]


@dataclass(frozen=True)
class _Page:
    rows: list[list[Any]]
    limit: int
    binance_rows: bool  # 12-field Binance klines (with quote volume) vs ccxt's 6-field rows
    exchange_id: str
    quote: str


def build_exchange(exchange_id: str, settings: Settings) -> ccxt.Exchange:
    """A ccxt exchange for public market data: request timeout, ccxt's rate limiter, spot only.

    Binance's market loading is limited to spot: its futures hosts are geoblocked too and are
    not served by the market-data-only fallback host.
    """
    if exchange_id not in ccxt.exchanges:
        raise ConfigError(
            f"sources.exchange: {exchange_id!r} is not a ccxt exchange id "
            f"(e.g. binance, kraken, coinbase, okx; see ccxt.exchanges)"
        )
    options: dict[str, Any] = {"defaultType": "spot"}
    if exchange_id in BINANCE_KLINE_EXCHANGES:
        options["fetchMarkets"] = {"types": ["spot"]}
    exchange_class = getattr(ccxt, exchange_id)
    exchange: ccxt.Exchange = exchange_class(
        {
            "timeout": int(settings.ingestion.http_timeout_seconds * 1000),
            "enableRateLimit": True,
            "options": options,
        }
    )
    return exchange


def summarise_order_book(
    bids: Sequence[Sequence[float]],
    asks: Sequence[Sequence[float]],
    *,
    depth: int,
    timestamp: datetime | pd.Timestamp,
    symbol: str,
    quote_currency: str,
    source_api: str,
) -> pd.DataFrame:
    """One normalised order-book row: top `depth` levels (best first), best bid/ask, spread, mid.

    An empty side gives NaN best price/spread/mid (and a warning) rather than an error: an empty
    book is a real market state, and validation quarantines the row with that reason.
    """
    if depth <= 0:
        raise ConfigError(f"order book depth must be a positive integer, got {depth}")
    top_bids = [[float(level[0]), float(level[1])] for level in bids[:depth]]
    top_asks = [[float(level[0]), float(level[1])] for level in asks[:depth]]
    best_bid = top_bids[0][0] if top_bids else np.nan
    best_ask = top_asks[0][0] if top_asks else np.nan
    if not top_bids or not top_asks:
        log.warning(
            "%s %s order book has %d bids and %d asks", source_api, symbol, len(bids), len(asks)
        )
    frame = pd.DataFrame(
        {
            "timestamp": [pd.Timestamp(timestamp)],
            "symbol": [symbol],
            "bids": [top_bids],
            "asks": [top_asks],
            "depth": [depth],
            "best_bid": [best_bid],
            "best_ask": [best_ask],
            "spread": [best_ask - best_bid],
            "mid": [(best_ask + best_bid) / 2],
            "quote_currency": [quote_currency],
            "source_api": [source_api],
        }
    )
    return conform(frame, Dataset.ORDERBOOK)


def ccxt_candles_frame(
    rows: Sequence[Sequence[Any]],
    *,
    symbol: str,
    interval: str,
    quote_currency: str,
    source_api: str,
) -> pd.DataFrame:
    """ccxt's unified candles ([ms, open, high, low, close, base volume]) to the OHLCV frame.

    The unified rows carry no quote volume, so it is NaN (never derived from price × volume).
    """
    if not rows:
        return empty_frame(Dataset.OHLCV)
    for index, row in enumerate(rows):
        if len(row) < 6 or row[0] is None:
            raise BadPayload(source_api, f"candle {index} is incomplete: {list(row)!r:.120}")
    table = pd.DataFrame([list(row[:6]) for row in rows], columns=["ms", *"ohlcv"])
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(table["ms"].astype("int64"), unit="ms", utc=True),
            "symbol": symbol,
            "interval": interval,
            "open": table["o"],
            "high": table["h"],
            "low": table["l"],
            "close": table["c"],
            "volume": table["v"],
            "quote_volume": np.nan,
            "quote_currency": quote_currency,
            "source_api": source_api,
        }
    )
    return conform(frame, Dataset.OHLCV)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _to_ms(value: datetime, name: str) -> int:
    """Unix milliseconds by integer arithmetic (float timestamps can land 1 ms short)."""
    if value.tzinfo is None:
        raise ConfigError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return (value - _EPOCH) // _MS


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _rewrite_origin(urls: Any, old: str, new: str) -> tuple[Any, bool]:
    """ccxt's `urls['api']` (a string or nested dicts) with every `old` origin replaced by `new`."""
    if isinstance(urls, str):
        if urls == old or urls.startswith(old + "/"):
            return new + urls[len(old) :], True
        return urls, False
    if isinstance(urls, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, value in urls.items():
            out[key], hit = _rewrite_origin(value, old, new)
            changed = changed or hit
        return out, changed
    return urls, False


class ExchangeSource(Source):
    """OHLCV candles and order-book snapshots from one ccxt venue (`sources.exchange`)."""

    name = "exchange"
    # intervals: whatever the venue lists (ccxt's `timeframes`), checked per request
    capabilities = Capabilities(
        datasets=frozenset({Dataset.OHLCV, Dataset.ORDERBOOK}), token_key="exchange"
    )

    def __init__(
        self,
        settings: Settings,
        exchange: ccxt.Exchange | None = None,
        *,
        exchange_factory: ExchangeFactory | None = None,
    ) -> None:
        """`exchange`/`exchange_factory` let callers (and tests) supply pre-built ccxt objects,
        e.g. with markets already set, so nothing loads markets from the internet implicitly."""
        super().__init__(settings)
        self.config = settings.sources.exchange
        self._factory: ExchangeFactory = exchange_factory or (
            lambda exchange_id: build_exchange(exchange_id, settings)
        )
        self._recorder = ResponseRecorder()
        self._pending_hosts = list(self.config.fallback_hosts)
        self._blocked: list[str] = []
        self._switched_exchange = False
        self._exchange = self._adopt(
            exchange if exchange is not None else self._factory(self.config.exchange_id)
        )

    @property
    def exchange(self) -> ccxt.Exchange:
        """The ccxt exchange in use (it changes if a 451 made us switch to the fallback venue)."""
        return self._exchange

    @property
    def source_api(self) -> str:
        return str(self._exchange.id)

    # ------------------------------------------------------------------ datasets

    def fetch_ohlcv(
        self, token: Token, interval: str, start: datetime, end: datetime
    ) -> FetchResult:
        """Closed candles with open time in [start, end), paginated by advancing `since`.

        Pages stop at `end`, on an empty page, or on a page shorter than the limit asked. Gaps
        are kept as gaps. A candle still forming when it was received is left out: bronze would
        otherwise freeze a partial candle once the watermark moves past it.
        """
        pair = token.source_id("exchange")
        step_ms = int(interval_length(interval).total_seconds() * 1000)
        start_ms, end_ms = _to_ms(start, "start"), _to_ms(end, "end")
        if start_ms >= end_ms:
            raise ConfigError(f"empty window: start {start} is not before end {end}")

        frames: list[pd.DataFrame] = []
        payloads: list[RawPayload] = []
        since = start_ms
        while since < end_ms:
            page, responses = self._call(
                f"{pair} {interval} candles from {pd.Timestamp(since, unit='ms', tz=UTC)}",
                partial(
                    self._candle_page, pair=pair, interval=interval, since=since, end_ms=end_ms
                ),
            )
            payloads.extend(r.payload() for r in responses)
            received_ms = _to_ms(responses[-1].received_at, "received") if responses else None
            frames.append(self._page_frame(page, token, interval, step_ms, received_ms))
            if not page.rows or len(page.rows) < page.limit:
                break
            next_since = int(max(row[0] for row in page.rows)) + step_ms
            if next_since <= since:
                raise BadPayload(
                    self.name,
                    f"{page.exchange_id} {pair} {interval}: pagination did not advance past {since}",
                )
            since = next_since

        frame = pd.concat(frames, ignore_index=True) if frames else empty_frame(Dataset.OHLCV)
        in_window = (frame["timestamp"] >= pd.Timestamp(start_ms, unit="ms", tz=UTC)) & (
            frame["timestamp"] < pd.Timestamp(end_ms, unit="ms", tz=UTC)
        )
        frame = frame[in_window]
        before = len(frame)
        frame = frame.drop_duplicates(subset=["timestamp"], keep="first")
        if len(frame) < before:
            log.info(
                "%s %s: dropped %d candles repeated across pages",
                pair,
                interval,
                before - len(frame),
            )
        frame = conform(frame.sort_values("timestamp"), Dataset.OHLCV)
        log.info(
            "%s %s %s: %d candles in %d pages",
            self.source_api,
            pair,
            interval,
            len(frame),
            len(payloads),
        )
        return FetchResult(self.source_api, Dataset.OHLCV, frame, payloads)

    def fetch_orderbook(self, token: Token, depth: int) -> FetchResult:
        """Top `depth` levels of the book now; timestamp is the exchange's, else receive time."""
        pair = token.source_id("exchange")
        if depth <= 0:
            raise ConfigError(f"order book depth must be a positive integer, got {depth}")

        def request(ex: ccxt.Exchange) -> tuple[dict[str, Any], str]:
            quote = str(ex.market(pair)["quote"])
            return ex.fetch_order_book(pair, limit=depth), quote

        (book, quote), responses = self._call(f"{pair} order book", request)
        received = responses[-1].received_at if responses else datetime.now(UTC)
        exchange_ms = book.get("timestamp")
        timestamp = (
            pd.Timestamp(int(exchange_ms), unit="ms", tz=UTC)
            if exchange_ms is not None
            else pd.Timestamp(received).floor("ms")
        )
        frame = summarise_order_book(
            book["bids"],
            book["asks"],
            depth=depth,
            timestamp=timestamp,
            symbol=token.symbol,
            quote_currency=quote,
            source_api=self.source_api,
        )
        return FetchResult(
            self.source_api, Dataset.ORDERBOOK, frame, [r.payload() for r in responses]
        )

    # ------------------------------------------------------------------ one page

    def _candle_page(
        self, ex: ccxt.Exchange, pair: str, interval: str, since: int, end_ms: int
    ) -> _Page:
        market = ex.market(pair)
        timeframe = ex.timeframes.get(interval) if ex.timeframes else None
        if timeframe is None:
            raise ConfigError(
                f"{ex.id} has no {interval!r} candles; it offers: {', '.join(ex.timeframes or {})}"
            )
        if ex.id in BINANCE_KLINE_EXCHANGES and market.get("spot"):
            limit = self.config.page_limit
            rows = ex.publicGetKlines(
                {
                    "symbol": market["id"],
                    "interval": timeframe,
                    "startTime": since,
                    "endTime": end_ms - 1,
                    "limit": limit,
                }
            )
            return _Page(list(rows), limit, True, str(ex.id), str(market["quote"]))
        venue_max = (ex.features or {}).get("spot", {}).get("fetchOHLCV", {}).get("limit")
        limit = min(self.config.page_limit, int(venue_max)) if venue_max else self.config.page_limit
        rows = ex.fetch_ohlcv(pair, interval, since=since, limit=limit)
        return _Page(list(rows), limit, False, str(ex.id), str(market["quote"]))

    def _page_frame(
        self, page: _Page, token: Token, interval: str, step_ms: int, received_ms: int | None
    ) -> pd.DataFrame:
        common = {
            "symbol": token.symbol,
            "interval": interval,
            "quote_currency": page.quote,
            "source_api": page.exchange_id,
        }
        if page.binance_rows:
            frame = parse_klines(page.rows, source=self.name, **common)
        else:
            frame = ccxt_candles_frame(page.rows, **common)
        if received_ms is not None and len(frame):
            open_ms = (frame["timestamp"] - pd.Timestamp(_EPOCH)) // pd.Timedelta(_MS)
            closed = open_ms + step_ms <= received_ms
            if not closed.all():
                log.info(
                    "%s %s: leaving out %d candle(s) still forming at receive time",
                    token.symbol,
                    interval,
                    int((~closed).sum()),
                )
                frame = frame[closed.to_numpy()]
        return frame

    # ------------------------------------------------------------------ transport

    def _adopt(self, exchange: ccxt.Exchange) -> ccxt.Exchange:
        """Apply our timeout and record every response ccxt's session receives."""
        exchange.timeout = int(self.settings.ingestion.http_timeout_seconds * 1000)
        session = getattr(exchange, "session", None)
        if not isinstance(session, requests.Session):
            raise ConfigError(f"ccxt exchange {exchange.id} has no requests session to observe")
        self._recorder.attach(session)
        return exchange

    @property
    def _responses(self) -> list[RecordedResponse]:
        return self._recorder.responses

    def _call(
        self, what: str, op: Callable[[ccxt.Exchange], T]
    ) -> tuple[T, list[RecordedResponse]]:
        """Run op with retries; on HTTP 451 switch host/venue and run the same request again."""
        while True:
            try:
                return call_with_retries(
                    lambda: self._attempt(what, op),
                    source=self.name,
                    config=self.settings.ingestion,
                )
            except Geoblocked as blocked:
                if not self._fall_back(blocked):
                    raise Geoblocked(self.name, self._geoblocked_advice(what)) from blocked

    def _attempt(
        self, what: str, op: Callable[[ccxt.Exchange], T]
    ) -> tuple[T, list[RecordedResponse]]:
        """One try: markets (once per venue), then op; ccxt errors become platform errors."""
        exchange = self._exchange
        self._recorder.clear()
        first = 0
        try:
            if not exchange.markets:
                log.info("%s: loading markets", exchange.id)
                exchange.load_markets()
                first = len(self._responses)
            result = op(exchange)
        except ccxt.BaseError as exc:
            raise self._map_error(exchange, what, exc) from exc
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            self._check_json(exchange)
            raise BadPayload(
                self.name,
                f"{exchange.id} {what}: response has an unexpected shape "
                f"({type(exc).__name__}: {exc})",
            ) from exc
        self._check_json(exchange)
        return result, self._responses[first:]

    def _check_json(self, exchange: ccxt.Exchange) -> None:
        """ccxt hands malformed JSON back as a string (and unified parsers then yield rows of
        None), so every successful body is checked here."""
        for response in self._responses:
            if response.status >= 300:
                continue
            try:
                json.loads(response.body)
            except ValueError as exc:
                raise BadPayload(
                    self.name,
                    f"{exchange.id}: malformed or truncated JSON from {response.url} "
                    f"({len(response.body)} bytes): {exc}",
                ) from exc

    def _map_error(self, exchange: ccxt.Exchange, what: str, exc: ccxt.BaseError) -> SourceError:
        last = self._responses[-1] if self._responses else None
        status = last.status if last else None
        detail = f"{exchange.id} {what}: {type(exc).__name__}: {str(exc)[:300]}"
        if isinstance(exc, ccxt.RequestTimeout):
            return SourceUnavailable(
                self.name,
                f"{exchange.id} {what}: no answer within "
                f"{self.settings.ingestion.http_timeout_seconds}s",
            )
        if status == 451 and last is not None:
            return Geoblocked(
                self.name, f"HTTP 451 (unavailable from this location) from {last.url}"
            )
        if isinstance(exc, ccxt.DDoSProtection) or status in (418, 429):
            retry_after = parse_retry_after(last.headers.get("Retry-After")) if last else None
            return RateLimited(self.name, f"HTTP {status}: {detail}", retry_after=retry_after)
        if isinstance(exc, ccxt.BadSymbol):
            return SymbolUnavailable(self.name, detail)
        if isinstance(exc, ccxt.BadResponse):
            return BadPayload(self.name, detail)
        if status is not None and 400 <= status < 500 and status != 408:
            return SourceError(self.name, f"HTTP {status}: {detail}")
        if isinstance(exc, ccxt.NetworkError) and status is None:
            cannot_reach = unreachable(self.name, exc, f"{exchange.id} ({what})")
            if cannot_reach is not None:
                return cannot_reach
        if isinstance(exc, ccxt.NetworkError) or (status is not None and status >= 500):
            return SourceUnavailable(self.name, f"HTTP {status}: {detail}" if status else detail)
        return SourceError(self.name, detail)

    def _fall_back(self, blocked: Geoblocked) -> bool:
        """Point the venue at the next fallback host, else switch venue; False when none is left.

        Fallback hosts mirror the configured venue's API, so they are only tried for it.
        """
        last = self._responses[-1] if self._responses else None
        blocked_origin = _origin(last.url) if last else None
        if blocked_origin:
            self._blocked.append(blocked_origin)
        while (
            blocked_origin
            and self._pending_hosts
            and self._exchange.id == self.config.exchange_id
            and not self._switched_exchange
        ):
            host = self._pending_hosts.pop(0).rstrip("/")
            urls, changed = _rewrite_origin(self._exchange.urls["api"], blocked_origin, host)
            if changed:
                self._exchange.urls["api"] = urls
                log.warning(
                    "%s: %s answered HTTP 451; retrying on fallback host %s",
                    self._exchange.id,
                    blocked_origin,
                    host,
                )
                return True
            log.warning(
                "%s: no endpoint uses %s; fallback host %s not applicable",
                self._exchange.id,
                blocked_origin,
                host,
            )
        fallback_id = self.config.fallback_exchange_id
        if fallback_id and not self._switched_exchange:
            previous = self._exchange.id
            self._switched_exchange = True
            self._exchange = self._adopt(self._factory(fallback_id))
            log.warning(
                "%s is geoblocked (%s); switching to fallback exchange %s: rows are recorded "
                "with source_api=%s",
                previous,
                blocked,
                fallback_id,
                self._exchange.id,
            )
            return True
        return False

    def _geoblocked_advice(self, what: str) -> str:
        tried = ", ".join(self._blocked) or "the configured host"
        return (
            f"{self._exchange.id} {what}: HTTP 451 (unavailable from this location) from every "
            f"host tried ({tried}). Set sources.exchange.fallback_exchange_id in "
            "config/config.yaml (or CRYPTO_SOURCES__EXCHANGE__FALLBACK_EXCHANGE_ID) to a venue "
            "that serves your location, e.g. kraken, or add a reachable mirror of the API to "
            "sources.exchange.fallback_hosts"
        )
