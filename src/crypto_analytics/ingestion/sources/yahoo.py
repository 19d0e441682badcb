"""Yahoo Finance candles (daily and intraday) from the v8 chart API, raw body kept.

Why not `yf.Ticker.history()`: it returns a reshaped DataFrame (30m resampled from 15m, the
trailing live price dropped, repairs applied) and throws the response away, and bronze must be
rebuildable from the bytes Yahoo sent. yfinance 1.7 rejects custom sessions, so we borrow its
own client instead: `yfinance.data.YfData.get()` runs the curl_cffi browser-impersonating session
and the cookie + crumb dance, and hands back the response object, whose `content` we keep as the
RawPayload and parse with our own pure `parse_chart`.

Units: Yahoo reports crypto volume in USD, not in the base coin; `volume` is kept as given and
`quote_volume` left empty so nothing downstream mistakes one for the other.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast
from urllib.parse import quote, urlencode

import pandas as pd
import requests
from yfinance.exceptions import YFRateLimitError

from crypto_analytics.config import Settings, Token, YahooConfig
from crypto_analytics.errors import (
    BadPayload,
    DatasetNotSupported,
    HistoryLimitExceeded,
    RateLimited,
    SourceError,
    SourceUnavailable,
    SymbolUnavailable,
)
from crypto_analytics.ingestion.frames import COLUMNS, Dataset, conform, empty_frame
from crypto_analytics.ingestion.http import call_with_retries, raise_for_status, unreachable
from crypto_analytics.ingestion.sources.base import Capabilities, FetchResult, RawPayload, Source
from crypto_analytics.intervals import check_window, floor_to_interval, interval_length

try:  # yfinance falls back to plain requests when curl_cffi is missing or disabled
    from curl_cffi.requests.exceptions import Timeout as CurlTimeout
except ImportError:  # pragma: no cover - curl_cffi ships with yfinance 1.7
    CurlTimeout = requests.Timeout  # type: ignore[misc,assignment]

log = logging.getLogger(__name__)

NAME = "yahoo"
DEFAULT_BASE_URL = "https://query2.finance.yahoo.com"
QUOTE_FIELDS = ("open", "high", "low", "close", "volume")

#: Our interval names -> Yahoo's. 30m is left out on purpose: Yahoo answers it with 60m bars
#: (yfinance works around it by resampling 15m, which would not be the raw data); Yahoo has no 4h.
YAHOO_INTERVALS: dict[str, str] = {"1m": "1m", "5m": "5m", "15m": "15m", "1h": "1h", "1d": "1d"}
#: Yahoo's names for the same granularity, as echoed in meta.dataGranularity.
_GRANULARITY_ALIASES: dict[str, str] = {"60m": "1h", "1h": "1h"}
#: A chart error whose description says this is Yahoo's intraday history limit, not a bad symbol.
_HISTORY_LIMIT_MARKER = "must be within the last"

_TIMEOUTS: tuple[type[BaseException], ...] = (requests.Timeout, CurlTimeout, TimeoutError)


class ChartResponse(Protocol):
    """What we read from a response (curl_cffi's and requests' both fit)."""

    status_code: int
    content: bytes
    text: str
    url: str
    headers: Any


class ChartClient(Protocol):
    """The one call we need from yfinance.data.YfData (or a stand-in with the same signature)."""

    def get(
        self, url: str, params: dict[str, Any] | None = None, timeout: float = 30
    ) -> ChartResponse: ...


def _chart_error(error: Any, symbol: str) -> SourceError:
    """The exception for a v8 chart `error` object, with Yahoo's own description."""
    if isinstance(error, Mapping):
        description = str(error.get("description") or error.get("code") or error)
        code = error.get("code")
    else:
        description, code = str(error), None
    message = f"{symbol}: Yahoo says {description!r}" + (f" ({code})" if code else "")
    if _HISTORY_LIMIT_MARKER in description:
        return HistoryLimitExceeded(NAME, message)
    return SymbolUnavailable(NAME, message)


def parse_chart(body_json: Any, symbol: str, interval: str) -> pd.DataFrame:
    """Normalise a v8 chart body into the OHLCV frame (frames.COLUMNS[OHLCV]).

    Pure: no I/O, no filtering. Timestamps come from `timestamp` (UTC seconds, candle open),
    prices and volume from `indicators.quote[0]`; nulls stay NaN so validation quarantines them.
    A chart `error` raises SymbolUnavailable (HistoryLimitExceeded for the intraday limit);
    anything structurally missing raises BadPayload naming the field.
    """
    if not isinstance(body_json, Mapping) or not isinstance(body_json.get("chart"), Mapping):
        raise BadPayload(NAME, f"{symbol}: chart body has no 'chart' object")
    chart = body_json["chart"]
    if chart.get("error"):
        raise _chart_error(chart["error"], symbol)
    results = chart.get("result")
    if not isinstance(results, list) or not results or not isinstance(results[0], Mapping):
        raise BadPayload(NAME, f"{symbol}: chart.result is missing or empty")
    result = results[0]

    meta = result.get("meta") or {}
    granularity = meta.get("dataGranularity") if isinstance(meta, Mapping) else None
    if granularity and _GRANULARITY_ALIASES.get(granularity, granularity) != interval:
        raise BadPayload(
            NAME, f"{symbol}: asked for {interval} candles, Yahoo sent {granularity} ones"
        )
    currency = meta.get("currency") if isinstance(meta, Mapping) else None

    indicators = result.get("indicators")
    quotes = indicators.get("quote") if isinstance(indicators, Mapping) else None
    if not isinstance(quotes, list) or not quotes or not isinstance(quotes[0], Mapping):
        raise BadPayload(NAME, f"{symbol}: chart.result[0].indicators.quote[0] is missing")
    quote_values = quotes[0]

    timestamps = result.get("timestamp")
    if timestamps is None:
        # Yahoo omits `timestamp` (and leaves quote[0] empty) when the window holds no candle.
        if any(quote_values.get(f) for f in QUOTE_FIELDS):
            raise BadPayload(NAME, f"{symbol}: quote values came without timestamps")
        return empty_frame(Dataset.OHLCV)
    if not isinstance(timestamps, list):
        raise BadPayload(NAME, f"{symbol}: chart.result[0].timestamp is not a list")
    try:
        seconds = pd.to_numeric(pd.Series(timestamps, dtype="object"), errors="raise")
    except (TypeError, ValueError) as exc:
        raise BadPayload(NAME, f"{symbol}: non-numeric value in timestamp: {exc}") from exc

    columns: dict[str, Any] = {"timestamp": pd.to_datetime(seconds, unit="s", utc=True)}
    for field in QUOTE_FIELDS:
        values = quote_values.get(field)
        if not isinstance(values, list):
            raise BadPayload(NAME, f"{symbol}: indicators.quote[0].{field} is missing")
        if len(values) != len(timestamps):
            raise BadPayload(
                NAME,
                f"{symbol}: indicators.quote[0].{field} has {len(values)} values "
                f"for {len(timestamps)} timestamps",
            )
        # as received: frames.conform applies the one coercion policy
        columns[field] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(columns)
    frame["symbol"] = symbol
    frame["interval"] = interval
    frame["quote_volume"] = float("nan")
    frame["quote_currency"] = str(currency or "USD").upper()
    frame["source_api"] = NAME
    return conform(frame[COLUMNS[Dataset.OHLCV]], Dataset.OHLCV)


def decode_chart(body: bytes, symbol: str) -> Any:
    """JSON from the raw body; malformed or truncated bytes become BadPayload."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BadPayload(
            NAME, f"{symbol}: malformed chart JSON ({len(body)} bytes): {exc}"
        ) from exc


def _default_client() -> ChartClient:
    from yfinance.data import YfData

    return cast(ChartClient, YfData())


class YahooSource(Source):
    """OHLCV candles from Yahoo's v8 chart API through yfinance's own session."""

    name = NAME
    capabilities = Capabilities(
        datasets=frozenset({Dataset.OHLCV}),
        token_key="yahoo",
        intervals=frozenset(YAHOO_INTERVALS),
        # Yahoo keeps intraday candles for a limited number of days (sources.yahoo.
        # intraday_history_days may narrow these if Yahoo changes them)
        history_days={"1m": 7, "5m": 60, "15m": 60, "1h": 730},
    )

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: ChartClient | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(settings)
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._now = now or (lambda: datetime.now(UTC))

    @property
    def config(self) -> YahooConfig:
        return self.settings.sources.yahoo

    @property
    def client(self) -> ChartClient:
        """yfinance's process-wide YfData (one cookie and crumb for every caller), made lazily."""
        if self._client is None:
            self._client = _default_client()
        return self._client

    def history_limit(self, interval: str) -> timedelta | None:
        configured = self.config.intraday_history_days.get(interval)
        if configured is not None:
            return timedelta(days=configured)
        return super().history_limit(interval)

    def fetch_ohlcv(
        self, token: Token, interval: str, start: datetime, end: datetime
    ) -> FetchResult:
        """Closed candles with open time in [start, end); the raw chart body rides along."""
        ticker = token.source_id("yahoo")
        yahoo_interval = self._yahoo_interval(interval)
        check_window(start, end)
        start = self._clamp_to_history_limit(ticker, interval, start, end)

        params = {
            "period1": int(start.timestamp()),
            "period2": int(end.timestamp()),
            "interval": yahoo_interval,
            "includePrePost": "false",
            "events": "",
        }
        url = f"{self.base_url}/v8/finance/chart/{quote(ticker, safe='')}"
        body = call_with_retries(
            lambda: self._get(url, params, ticker),
            source=self.name,
            config=self.settings.ingestion,
        )
        # The crumb YfData adds is a session secret: the recorded request leaves it out.
        payload = RawPayload(body=body, request=f"{url}?{urlencode(params)}")
        frame = parse_chart(decode_chart(body, token.symbol), token.symbol, interval)
        return FetchResult(
            self.source_api,
            Dataset.OHLCV,
            self._closed_in_window(frame, interval, start, end),
            [payload],
        )

    def _yahoo_interval(self, interval: str) -> str:
        interval_length(interval)  # ConfigError for names outside the platform's vocabulary
        try:
            return YAHOO_INTERVALS[interval]
        except KeyError:
            raise DatasetNotSupported(
                self.name,
                f"no {interval} candles from Yahoo; it serves {', '.join(YAHOO_INTERVALS)}",
            ) from None

    def _clamp_to_history_limit(
        self, ticker: str, interval: str, start: datetime, end: datetime
    ) -> datetime:
        """Yahoo keeps intraday candles for a limited number of days: clamp, or refuse."""
        step = interval_length(interval)
        limit = self.history_limit(interval)
        if limit is None:
            return start
        limit_days = limit.days
        # The first candle opening strictly after now - limit: Yahoo measures from its own now,
        # a moment later than ours, so the boundary candle itself would be refused.
        earliest = floor_to_interval(self._now() - limit, interval) + step
        if end <= earliest:
            raise HistoryLimitExceeded(
                self.name,
                f"{ticker}: Yahoo keeps {interval} candles for {limit_days} days only "
                f"(from {earliest.isoformat()}); the window {start.isoformat()} -> "
                f"{end.isoformat()} lies wholly before that",
            )
        if start < earliest:
            log.warning(
                "%s %s: Yahoo keeps %s candles for %d days only; start clamped from %s to %s",
                ticker,
                interval,
                interval,
                limit_days,
                start.isoformat(),
                earliest.isoformat(),
            )
            return earliest
        return start

    def _closed_in_window(
        self, frame: pd.DataFrame, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """Rows with open time in [start, end) whose candle has closed.

        Yahoo returns the candle at period2 and a trailing "live" point stamped with the last
        trade time; the first is outside the contract, the second is not a candle yet (its
        values change until it closes, and the next run fetches it closed).
        """
        if frame.empty:
            return frame
        in_window = (frame["timestamp"] >= start) & (frame["timestamp"] < end)
        closed = frame["timestamp"] + interval_length(interval) <= self._now()
        forming = int((in_window & ~closed).sum())
        if forming:
            log.info(
                "%s %s: left out %d candle(s) still forming",
                frame["symbol"].iloc[0],
                interval,
                forming,
            )
        return frame[in_window & closed].reset_index(drop=True)

    def _get(self, url: str, params: dict[str, Any], ticker: str) -> bytes:
        """One chart request through YfData, its failures mapped to the platform's errors."""
        timeout = self.settings.ingestion.http_timeout_seconds
        try:
            response = self.client.get(url, params=dict(params), timeout=timeout)
        except YFRateLimitError as exc:
            raise RateLimited(self.name, f"{ticker}: Yahoo rate limit ({exc})") from exc
        except _TIMEOUTS as exc:
            raise SourceUnavailable(self.name, f"{ticker}: timed out after {timeout}s") from exc
        except OSError as exc:  # curl_cffi and requests errors are both OSErrors
            raise unreachable(self.name, exc, f"{self.base_url} ({ticker})") or SourceUnavailable(
                self.name, f"{ticker}: connection failed: {exc}"
            ) from exc

        status = response.status_code
        if status >= 400:
            if status < 500 and status not in (408, 418, 429):
                error = _error_object(response.content)
                if error is not None:
                    raise _chart_error(error, ticker)
            raise_for_status(self.name, cast(requests.Response, response))
        return bytes(response.content)


def _error_object(body: bytes) -> Any:
    """The chart `error` object of an error response, or None when the body has none."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    chart = data.get("chart") if isinstance(data, Mapping) else None
    return chart.get("error") if isinstance(chart, Mapping) else None
