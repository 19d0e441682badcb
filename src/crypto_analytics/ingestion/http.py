"""The one retry helper and HTTP error mapping every source client uses.

Why tenacity: backoff with jitter, attempt caps and before-sleep logging are solved problems; we
only add the policy: retry RateLimited (sleeping at least its Retry-After) and SourceUnavailable
(5xx, timeouts, resets), never BadPayload, SymbolUnavailable or Geoblocked, which a retry
cannot fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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
)

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
        isinstance(exc, SourceUnavailable) and not isinstance(exc, Geoblocked)
    )


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
        raise SourceUnavailable(source, f"connection failed: {url}: {exc}") from exc
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
