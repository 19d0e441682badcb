"""The one retry helper, HTTP error mapping and response recorder every source client uses.

Why tenacity: backoff with jitter, attempt caps and before-sleep logging are solved problems; we
only add the policy: retry RateLimited (sleeping at least its Retry-After) and SourceUnavailable
(5xx, timeouts, resets), never BadPayload, SymbolUnavailable, Geoblocked or SourceUnreachable
(a name that does not resolve, a refused connection), which a retry cannot fix.

Why one recorder: every client (ccxt, pycoingecko, plain requests) makes its requests on a
requests.Session, and a response hook on it sees each response exactly as received: its bytes
go to the lake and its status decides the error, whatever library made the call.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from crypto_analytics.config import IngestionConfig
from crypto_analytics.errors import (
    BadPayload,
    Geoblocked,
    RateLimited,
    SourceError,
    SourceUnavailable,
    SourceUnreachable,
)
from crypto_analytics.ingestion.sources.base import RawPayload

log = logging.getLogger(__name__)

T = TypeVar("T")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited) or (
        isinstance(exc, SourceUnavailable) and not isinstance(exc, Geoblocked | SourceUnreachable)
    )


#: curl error codes (curl_cffi, under yfinance) for a host that cannot be reached at all.
_CURL_UNREACHABLE = {
    5: "its proxy name does not resolve",
    6: "its name does not resolve",
    7: "it refused the connection",
}


def unreachable_reason(exc: BaseException) -> str | None:
    """Why the host cannot be reached ("its name does not resolve", "it refused the connection")
    when exc or anything in its cause chain says so; None for other failures (timeouts, resets,
    HTTP errors), which may pass."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, socket.gaierror) or type(error).__name__ in (
            "NameResolutionError",
            "DNSError",
        ):
            return "its name does not resolve"
        if isinstance(error, ConnectionRefusedError):
            return "it refused the connection"
        code = getattr(error, "code", None)
        if type(error).__module__.startswith("curl_cffi") and code in _CURL_UNREACHABLE:
            return _CURL_UNREACHABLE[code]
        pending.extend([error.__cause__, error.__context__, getattr(error, "reason", None)])
        pending.extend(a for a in error.args if isinstance(a, BaseException))
    return None


def unreachable(source: str, exc: BaseException, what: str) -> SourceUnreachable | None:
    """SourceUnreachable for a host that cannot be reached (see unreachable_reason), else None."""
    reason = unreachable_reason(exc)
    if reason is None:
        return None
    return SourceUnreachable(
        source, f"cannot reach {what}: {reason} (not retried; check the URL, DNS and network)"
    )


@dataclass(frozen=True)
class RecordedResponse:
    """One HTTP response as received: what the lake keeps and what the error mapping reads."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime
    response: requests.Response = field(repr=False, compare=False)

    def payload(self, media_type: str = "application/json") -> RawPayload:
        return RawPayload(
            body=self.body, request=self.url, media_type=media_type, received_at=self.received_at
        )


class ResponseRecorder:
    """Every response a requests.Session receives, in order, kept per thread (a response hook)."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self._local = threading.local()
        if session is not None:
            self.attach(session)

    def attach(self, session: requests.Session) -> None:
        session.hooks["response"].append(self._hook)

    def _hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.responses.append(
            RecordedResponse(
                status=response.status_code,
                url=response.url,
                headers=dict(response.headers),
                body=response.content,
                received_at=datetime.now(UTC),
                response=response,
            )
        )

    @property
    def responses(self) -> list[RecordedResponse]:
        if not hasattr(self._local, "responses"):
            self._local.responses = []
        found: list[RecordedResponse] = self._local.responses
        return found

    @property
    def last(self) -> RecordedResponse | None:
        return self.responses[-1] if self.responses else None

    def clear(self) -> None:
        self._local.responses = []


def call_with_retries(fn: Callable[[], T], *, source: str, config: IngestionConfig) -> T:
    """Run fn, retrying transient source errors with exponential backoff honouring Retry-After."""
    backoff = wait_exponential_jitter(
        multiplier=config.retry_base_seconds,
        max=config.retry_max_seconds,
        jitter=config.retry_base_seconds,
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        delay = backoff(state)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, config.retry_max_seconds))
        return delay

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: attempt %d failed (%s); retrying in %.1fs",
            source,
            state.attempt_number,
            exc,
            state.next_action.sleep if state.next_action else 0.0,
        )

    retrying = Retrying(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(config.max_retries + 1),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)


def raise_for_status(source: str, response: requests.Response) -> None:
    """Map an HTTP error status to the platform's exceptions (no-op for 2xx/3xx)."""
    status = response.status_code
    if status < 400:
        return
    snippet = response.text[:200].replace("\n", " ")
    if status in (418, 429):
        raise RateLimited(
            source,
            f"HTTP {status} from {response.url}: {snippet}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status == 451:
        raise Geoblocked(source, f"HTTP 451 (unavailable from this location) from {response.url}")
    if status >= 500 or status == 408:
        raise SourceUnavailable(source, f"HTTP {status} from {response.url}: {snippet}")
    raise SourceError(source, f"HTTP {status} from {response.url}: {snippet}")


def get(
    session: requests.Session,
    url: str,
    *,
    source: str,
    timeout: float,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """One GET with a timeout, network failures mapped to SourceUnavailable, statuses mapped."""
    try:
        response = session.get(url, params=params, headers=headers, timeout=timeout)
    except requests.Timeout as exc:
        raise SourceUnavailable(source, f"timed out after {timeout}s: {url}") from exc
    except requests.ConnectionError as exc:
        raise unreachable(source, exc, url) or SourceUnavailable(
            source, f"connection failed: {url}: {exc}"
        ) from exc
    raise_for_status(source, response)
    return response


def decode_json(source: str, response: requests.Response) -> Any:
    """Parse a JSON body; malformed or truncated JSON becomes BadPayload naming the URL."""
    try:
        return response.json()
    except ValueError as exc:
        raise BadPayload(
            source, f"malformed JSON from {response.url} ({len(response.content)} bytes): {exc}"
        ) from exc
