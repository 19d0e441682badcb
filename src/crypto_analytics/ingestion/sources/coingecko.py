"""CoinGecko market data (price, market cap, supply, volume) through pycoingecko, raw bodies kept.

Two endpoints, chosen by the window: a window ending within the last hour is a "now" snapshot,
served for every token at once by `/coins/markets` (the only one with circulating supply);
an older window is history, `/coins/{id}/market_chart/range` per token (granularity is
CoinGecko's: 5-minute up to a day, hourly up to 90 days, daily beyond).

How we use pycoingecko 3.2: its CoinGeckoAPI picks the host (pro key -> pro host) and builds
the requests; we (1) move the API key from the query string into CoinGecko's header
(`x-cg-demo-api-key` / `x-cg-pro-api-key`), so it never lands in a URL, a log line or the raw
lake's request record; (2) remove its urllib3 retries, so http.call_with_retries is the only
retry policy and a 429's Retry-After is honoured; (3) hook its requests.Session to keep each
response, whose `content` is the RawPayload and whose status decides the error we raise.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pandas as pd
import requests
from pycoingecko import CoinGeckoAPI
from requests.adapters import HTTPAdapter

from crypto_analytics.config import CoinGeckoConfig, Settings, Token, tokens_for_source
from crypto_analytics.errors import (
    BadPayload,
    ConfigError,
    HistoryLimitExceeded,
    SourceError,
    SourceUnavailable,
    SymbolUnavailable,
)
from crypto_analytics.ingestion.frames import Dataset, conform, empty_frame, to_numbers
from crypto_analytics.ingestion.http import (
    ResponseRecorder,
    call_with_retries,
    raise_for_status,
    unreachable,
)
from crypto_analytics.ingestion.rate_budget import RequestBudget, shared_budget
from crypto_analytics.ingestion.sources.base import Capabilities, FetchResult, RawPayload, Source
from crypto_analytics.intervals import check_window

log = logging.getLogger(__name__)

NAME = "coingecko"
#: Where a key goes, per plan (CoinGecko accepts either header or query parameter; we use headers).
KEY_HEADERS: dict[str, str] = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
#: A window ending this close to now is a snapshot of the current market.
SNAPSHOT_WINDOW = timedelta(hours=1)
#: CoinGecko's page size ceiling for /coins/markets.
MAX_PER_PAGE = 250
#: CoinGecko's error code for "request exceeds the allowed time range" (keyless/demo history cap).
HISTORY_LIMIT_ERROR_CODE = 10012
#: Clamp a little inside the cap: CoinGecko measures it from its own, slightly later, now.
HISTORY_CAP_MARGIN = timedelta(minutes=5)
#: Fields /coins/markets must carry for every coin we keep.
MARKETS_FIELDS = (
    "current_price",
    "market_cap",
    "circulating_supply",
    "total_volume",
    "last_updated",
)
#: market_chart series -> our column.
CHART_SERIES: dict[str, str] = {
    "prices": "price",
    "market_caps": "market_cap",
    "total_volumes": "total_volume",
}


def parse_coins_markets(
    body_json: Any, symbols_by_id: Mapping[str, str], quote_currency: str
) -> pd.DataFrame:
    """One MARKET row per coin we track in a /coins/markets body; other coins are ignored.

    Timestamp is the coin's `last_updated` (when CoinGecko last priced it), not our fetch time.
    """
    if not isinstance(body_json, list):
        raise BadPayload(NAME, f"/coins/markets body is {type(body_json).__name__}, not a list")
    rows: list[dict[str, Any]] = []
    for position, coin in enumerate(body_json):
        if not isinstance(coin, Mapping) or "id" not in coin:
            raise BadPayload(NAME, f"/coins/markets entry {position} has no 'id'")
        symbol = symbols_by_id.get(coin["id"])
        if symbol is None:
            log.debug("coingecko: %s is not in the universe; ignored", coin["id"])
            continue
        missing = [f for f in MARKETS_FIELDS if f not in coin]
        if missing:
            raise BadPayload(NAME, f"/coins/markets entry {coin['id']} lacks {', '.join(missing)}")
        rows.append(
            {
                "timestamp": coin["last_updated"],
                "symbol": symbol,
                "price": coin["current_price"],
                "market_cap": coin["market_cap"],
                "circulating_supply": coin["circulating_supply"],
                "total_volume": coin["total_volume"],
            }
        )
    if not rows:
        return empty_frame(Dataset.MARKET)
    frame = pd.DataFrame(rows)
    frame["quote_currency"] = quote_currency
    frame["source_api"] = NAME
    return conform(frame, Dataset.MARKET)


def _chart_series(body: Mapping[str, Any], key: str, symbol: str) -> pd.Series:
    """One market_chart series as values indexed by epoch milliseconds.

    A point repeated verbatim is kept once; two different values for one timestamp are a
    BadPayload, because picking either would be a guess.
    """
    points = body.get(key)
    if not isinstance(points, list):
        raise BadPayload(NAME, f"{symbol}: market_chart has no '{key}' list")
    pairs: list[tuple[int, float]] = []
    for point in points:
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not isinstance(point[0], int | float)
            or isinstance(point[0], bool)
        ):
            raise BadPayload(
                NAME, f"{symbol}: market_chart.{key} point {point!r} is not [ms, value]"
            )
        pairs.append((int(point[0]), point[1]))
    # values stay as received: frames.conform applies the one coercion policy (numbers or
    # numeric strings) and notes anything unreadable for validation
    frame = pd.DataFrame(pairs, columns=["ms", "value"], dtype=object).astype({"ms": "int64"})
    frame["number"] = to_numbers(frame["value"])
    frame = frame.drop_duplicates(subset=["ms", "number"])
    repeated = frame["ms"][frame["ms"].duplicated()]
    if not repeated.empty:
        raise BadPayload(
            NAME, f"{symbol}: market_chart.{key} has two values at {int(repeated.iloc[0])} ms"
        )
    return frame.set_index("ms")["value"]


def parse_market_chart(body_json: Any, symbol: str, quote_currency: str) -> pd.DataFrame:
    """MARKET rows from a market_chart(/range) body, the three series aligned on timestamp.

    A timestamp present in one series but not another keeps NaN there (never filled); the
    endpoint has no circulating supply, so that column is NaN throughout.
    """
    if not isinstance(body_json, Mapping):
        raise BadPayload(NAME, f"{symbol}: market_chart body is not a JSON object")
    aligned = pd.concat(
        {column: _chart_series(body_json, key, symbol) for key, column in CHART_SERIES.items()},
        axis=1,
        join="outer",
    ).sort_index()
    if aligned.empty:
        return empty_frame(Dataset.MARKET)
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(aligned.index.to_numpy(), unit="ms", utc=True),
            "symbol": symbol,
            "price": aligned["price"].to_numpy(),
            "market_cap": aligned["market_cap"].to_numpy(),
            "circulating_supply": math.nan,
            "total_volume": aligned["total_volume"].to_numpy(),
            "quote_currency": quote_currency,
            "source_api": NAME,
        }
    )
    return conform(frame, Dataset.MARKET)


def _error_status(body: bytes) -> tuple[int | None, str | None]:
    """(error_code, message) from CoinGecko's error bodies, in their three known shapes."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, Mapping):
        return None, None
    error = data.get("error")
    if isinstance(error, str):  # {"error": "coin not found"}
        return None, error
    status = error.get("status") if isinstance(error, Mapping) else data.get("status")
    if isinstance(status, Mapping):
        code = status.get("error_code")
        return (code if isinstance(code, int) else None), status.get("error_message")
    return None, None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


class CoinGeckoSource(Source):
    """Market snapshots and market history for many tokens, within the plan's request budget."""

    name = NAME
    capabilities = Capabilities(
        datasets=frozenset({Dataset.MARKET}),
        token_key="coingecko",
        intervals=frozenset(),
        symbols_per_request=MAX_PER_PAGE,  # /coins/markets serves this many ids per page
    )

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        budget: RequestBudget | None = None,
        now: Callable[[], datetime] | None = None,
        per_page: int = MAX_PER_PAGE,
    ) -> None:
        super().__init__(settings)
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ConfigError(f"per_page must be between 1 and {MAX_PER_PAGE}, got {per_page}")
        self.per_page = per_page
        self._now = now or (lambda: datetime.now(UTC))
        self._recorder = ResponseRecorder()
        self.api = self._build_api(base_url)

        plan = self.config.plan
        rate = self.config.requests_per_minute.get(plan)
        if rate is None:
            raise ConfigError(
                f"sources.coingecko.requests_per_minute has no rate for plan {plan!r}"
            )
        self.budget = budget or shared_budget(f"coingecko {plan} {self.api.api_base_url}", rate)

    @property
    def config(self) -> CoinGeckoConfig:
        return self.settings.sources.coingecko

    @property
    def quote_currency(self) -> str:
        return self.config.vs_currency.upper()

    def _build_api(self, base_url: str | None) -> CoinGeckoAPI:
        plan = self.config.plan
        secret = self.settings.coingecko_api_key
        key = secret.get_secret_value() if secret is not None else ""
        if plan == "pro":
            if not key:
                raise ConfigError(
                    "sources.coingecko.plan is 'pro' but COINGECKO_API_KEY is not set"
                )
            api = CoinGeckoAPI(api_key=key, retries=0)
        elif plan == "demo":
            if not key:
                raise ConfigError(
                    "sources.coingecko.plan is 'demo' but COINGECKO_API_KEY is not set"
                )
            api = CoinGeckoAPI(demo_api_key=key, retries=0)
        else:
            if key:
                log.warning(
                    "coingecko: COINGECKO_API_KEY is set but sources.coingecko.plan is keyless; "
                    "the key is not used (set the plan to demo or pro)"
                )
            api = CoinGeckoAPI(retries=0)
        api.extra_params = None  # the key travels in a header, never in the URL
        if plan in KEY_HEADERS:
            api.session.headers[KEY_HEADERS[plan]] = key
        if base_url is not None:
            api.api_base_url = base_url.rstrip("/") + "/"
        api.request_timeout = self.settings.ingestion.http_timeout_seconds
        # pycoingecko mounts a urllib3 Retry with a status_forcelist even for retries=0, which
        # turns a 502 into a RetryError without its response; a plain adapter hands us the
        # response and leaves retrying to http.call_with_retries alone.
        for prefix in ("https://", "http://"):
            api.session.mount(prefix, HTTPAdapter(max_retries=0))
        self._recorder.attach(api.session)
        return api

    def _last_response(self) -> requests.Response | None:
        last = self._recorder.last
        return last.response if last is not None else None

    # ---- fetching -------------------------------------------------------------------------

    def fetch_market_data(self, tokens: list[Token], start: datetime, end: datetime) -> FetchResult:
        """Snapshot for a window ending within the last hour, else per-token history in [start, end)."""
        check_window(start, end)
        served = tokens_for_source(tokens, "coingecko")
        if not served:
            return FetchResult(self.source_api, Dataset.MARKET, empty_frame(Dataset.MARKET), [])
        now = self._now()
        if end >= now - SNAPSHOT_WINDOW:
            if start < now - SNAPSHOT_WINDOW:
                log.info(
                    "coingecko: window %s -> %s ends now, so it is served as a snapshot of the "
                    "latest values; ask for a window ending over an hour ago to get history",
                    start.isoformat(),
                    end.isoformat(),
                )
            return self._fetch_snapshot(served)
        return self._fetch_history(served, self._clamp_to_history_cap(start, end, now), end)

    def _fetch_snapshot(self, served: list[tuple[Token, str]]) -> FetchResult:
        """/coins/markets for all tokens: ids in chunks of 250, pages until every id is seen.

        Rows are not filtered by the window: each carries CoinGecko's last_updated, and a coin
        not repriced since the last run repeats a key the loader already has.
        """
        symbols_by_id = {coin_id: token.symbol for token, coin_id in served}
        frames: list[pd.DataFrame] = []
        payloads: list[RawPayload] = []
        seen: set[str] = set()
        for chunk in _chunks(list(symbols_by_id), MAX_PER_PAGE):
            page = 1
            while True:
                request = partial(
                    self.api.get_coins_markets,
                    self.config.vs_currency,
                    ids=",".join(chunk),
                    per_page=self.per_page,
                    page=page,
                )
                data, payload = self._call(request, f"/coins/markets page {page}")
                payloads.append(payload)
                frames.append(parse_coins_markets(data, symbols_by_id, self.quote_currency))
                seen.update(c["id"] for c in data if c["id"] in symbols_by_id)
                last_page = math.ceil(len(chunk) / self.per_page)
                if len(data) < self.per_page or seen.issuperset(chunk) or page >= last_page:
                    break
                page += 1
        for coin_id in symbols_by_id.keys() - seen:
            log.warning(
                "coingecko: no market data for %s (id %r); skipped",
                symbols_by_id[coin_id],
                coin_id,
            )
        return FetchResult(self.source_api, Dataset.MARKET, self._concat(frames), payloads)

    def _fetch_history(
        self, served: list[tuple[Token, str]], start: datetime, end: datetime
    ) -> FetchResult:
        """/coins/{id}/market_chart/range per token; unknown or empty tokens are skipped."""
        frames: list[pd.DataFrame] = []
        payloads: list[RawPayload] = []
        for token, coin_id in served:
            request = partial(
                self.api.get_coin_market_chart_range_by_id,
                coin_id,
                self.config.vs_currency,
                int(start.timestamp()),
                math.ceil(end.timestamp()),
            )
            try:
                data, payload = self._call(request, f"/coins/{coin_id}/market_chart/range")
            except SymbolUnavailable as exc:
                log.warning("coingecko: %s skipped: %s", token.symbol, exc)
                continue
            payloads.append(payload)
            frame = parse_market_chart(data, token.symbol, self.quote_currency)
            frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
            if frame.empty:
                log.warning(
                    "coingecko: no data for %s (id %r) in %s -> %s; skipped",
                    token.symbol,
                    coin_id,
                    start.isoformat(),
                    end.isoformat(),
                )
                continue
            frames.append(frame)
        return FetchResult(self.source_api, Dataset.MARKET, self._concat(frames), payloads)

    @staticmethod
    def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
        frames = [f for f in frames if not f.empty]
        if not frames:
            return empty_frame(Dataset.MARKET)
        return conform(pd.concat(frames, ignore_index=True), Dataset.MARKET)

    def _clamp_to_history_cap(self, start: datetime, end: datetime, now: datetime) -> datetime:
        """Keyless and demo plans see only the last keyless_history_days: clamp, or refuse."""
        plan = self.config.plan
        if plan == "pro":
            return start
        days = self.config.keyless_history_days
        earliest = now - timedelta(days=days) + HISTORY_CAP_MARGIN
        how_to_lift = "a pro key lifts the cap (sources.coingecko.plan: pro and COINGECKO_API_KEY)"
        if end <= earliest:
            raise HistoryLimitExceeded(
                self.name,
                f"the {plan} plan serves only the last {days} days (from {earliest.isoformat()}); "
                f"the window {start.isoformat()} -> {end.isoformat()} lies wholly before that; "
                f"{how_to_lift}",
            )
        if start < earliest:
            log.warning(
                "coingecko: the %s plan serves only the last %d days; start clamped from %s to "
                "%s; %s",
                plan,
                days,
                start.isoformat(),
                earliest.isoformat(),
                how_to_lift,
            )
            return earliest
        return start

    def _call(self, request: Callable[[], Any], what: str) -> tuple[Any, RawPayload]:
        """One budgeted, retried request; returns the decoded body and the raw one."""
        timeout = self.api.request_timeout

        def attempt() -> tuple[Any, RawPayload]:
            self.budget.acquire()
            self._recorder.clear()
            try:
                data = request()
            except requests.Timeout as exc:
                raise SourceUnavailable(self.name, f"timed out after {timeout}s: {what}") from exc
            except requests.HTTPError as exc:
                response = exc.response if exc.response is not None else self._last_response()
                if response is None:
                    raise SourceUnavailable(self.name, f"{what}: {exc}") from exc
                raise self._error_for(response, exc) from exc
            except requests.RequestException as exc:
                raise unreachable(self.name, exc, f"{self.api.api_base_url} ({what})") or (
                    SourceUnavailable(self.name, f"connection failed: {what}: {exc}")
                ) from exc
            except ValueError as exc:  # bad JSON, or pycoingecko's ValueError(error body)
                response = self._last_response()
                if response is None:
                    raise
                raise self._error_for(response, exc) from exc
            response = self._last_response()
            if response is None:  # pragma: no cover - the hook runs for every response
                raise SourceError(self.name, f"{what}: no response was recorded")
            return data, RawPayload(body=response.content, request=response.url)

        return call_with_retries(attempt, source=self.name, config=self.settings.ingestion)

    def _error_for(self, response: requests.Response, exc: Exception) -> SourceError:
        """The platform error for a failed CoinGecko response."""
        status = response.status_code
        if status < 400:
            return BadPayload(
                self.name,
                f"malformed JSON from {response.url} ({len(response.content)} bytes): {exc}",
            )
        code, message = _error_status(response.content)
        if code == HISTORY_LIMIT_ERROR_CODE:
            return HistoryLimitExceeded(
                self.name,
                f"CoinGecko refused {response.url} with error {code} on the "
                f"{self.config.plan} plan: {(message or 'history beyond the plan').strip()} "
                "(a pro key lifts the cap: sources.coingecko.plan: pro and COINGECKO_API_KEY)",
            )
        if status == 404 and message and "not found" in message.lower():
            return SymbolUnavailable(self.name, f"{message} ({response.url})")
        try:
            raise_for_status(self.name, response)
        except SourceError as mapped:
            return mapped
        return SourceError(self.name, f"HTTP {status} from {response.url}")  # pragma: no cover
