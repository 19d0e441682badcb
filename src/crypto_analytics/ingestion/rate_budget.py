"""A per-process request budget: at most N requests in any rolling minute, shared by threads.

Why our own (about 60 lines) rather than pyrate-limiter: the budget must be testable without
sleeping, so the clock and the sleep are injected; pyrate-limiter (4.x, its API changed in
every major release) sleeps on the real clock inside `try_acquire`, which would make the tests
that prove the budget either slow or timed. Retries after a 429 stay with http.call_with_retries;
this module only keeps us from earning the 429 in the first place.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from crypto_analytics.errors import ConfigError

log = logging.getLogger(__name__)

SECONDS_PER_MINUTE = 60.0


class RequestBudget:
    """Blocks `acquire()` so that no rolling window sees more requests than the rate allows.

    A rate below one per minute (e.g. 0.5) becomes one request per 120 s. The window is a log of
    the last `capacity` request times: exact, and a burst up to the capacity costs no wait.
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "requests",
    ) -> None:
        if not math.isfinite(requests_per_minute) or requests_per_minute <= 0:
            raise ConfigError(
                f"{name}: requests_per_minute must be a positive number, got {requests_per_minute!r}"
            )
        self.requests_per_minute = float(requests_per_minute)
        self.capacity = max(1, math.floor(requests_per_minute))
        self.window_seconds = self.capacity * SECONDS_PER_MINUTE / self.requests_per_minute
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one request slot, sleeping until one is free; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window_seconds:
                    self._sent.popleft()
                if len(self._sent) < self.capacity:
                    self._sent.append(now)
                    return waited
                delay = self._sent[0] + self.window_seconds - now
            log.info(
                "%s: request budget of %g/min spent; waiting %.1fs",
                self.name,
                self.requests_per_minute,
                delay,
            )
            self._sleep(delay)
            waited += delay


_shared: dict[str, RequestBudget] = {}
_shared_lock = threading.Lock()


def shared_budget(key: str, requests_per_minute: float) -> RequestBudget:
    """The process-wide budget for `key` (e.g. an API host and plan), created on first use.

    Every client of the same API in one process must draw from one budget, or two sources built
    by two tasks would each spend the full rate. A changed rate for the same key replaces it.
    """
    with _shared_lock:
        budget = _shared.get(key)
        if budget is None or budget.requests_per_minute != float(requests_per_minute):
            budget = RequestBudget(requests_per_minute, name=key)
            _shared[key] = budget
        return budget
