"""Query results the dashboard serves, cached for five minutes where every reader sees them.

Why not `st.cache_data` alone: Streamlit's cache lives inside one dashboard process and nothing
outside it can empty it, yet the gold DAG must be able to say "gold changed" the moment it
finishes, and several dashboard processes should share one copy of each result. So results go to
Redis when `REDIS_URL` is set (shared, survives dashboard restarts) and to an in-process TTL cache
otherwise (a laptop without Redis); both expire entries after `dashboard.cache_ttl_seconds` (300).

Invalidation by generation: every key carries the current generation and `refresh()` (the gold
DAG's last task) moves it on, so every reader misses at once and the old entries simply expire.
With Redis the generation is a Redis key; without it, a small file under the data directory,
which the DAG and the dashboard share when they run on one machine (`make up`).

Values are DataFrames stored as Arrow IPC bytes in both backends, never pickles: reading a cache
entry can never run code, and a caller mutating its frame cannot corrupt the cached copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import CacheUnavailable

log = logging.getLogger(__name__)

KEY_PREFIX = "crypto:serving"
GENERATION_FILE = "serving_cache.generation"
#: Redis calls must never hold a page up: a Redis that does not answer within this is skipped.
REDIS_TIMEOUT_SECONDS = 1.0


class CacheBackend(Protocol):
    """Where cached bytes live. `generation()` names the current epoch of gold."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    def generation(self) -> str: ...

    def bump_generation(self) -> str: ...

    def describe(self) -> str: ...


class MemoryBackend:
    """An in-process TTL cache; the generation lives in a file so another process can bump it."""

    def __init__(
        self,
        generation_file: Path,
        max_entries: int = 1024,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        from cachetools import TLRUCache

        self._generation_file = generation_file
        # Each entry is (bytes, ttl); its expiry is now + its own ttl.
        self._entries: TLRUCache[str, tuple[bytes, int]] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, entry, now: now + entry[1], timer=timer
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            self._entries[key] = (value, ttl_seconds)

    def generation(self) -> str:
        try:
            return self._generation_file.read_text().strip() or "0"
        except FileNotFoundError:
            return "0"

    def bump_generation(self) -> str:
        new = uuid.uuid4().hex
        self._generation_file.parent.mkdir(parents=True, exist_ok=True)
        staging = self._generation_file.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(new)
        staging.replace(self._generation_file)  # atomic: a reader sees the old or the new one
        return new

    def describe(self) -> str:
        return "in-process"


class RedisBackend:
    """Entries with a server-side TTL in Redis; the generation is one Redis key."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._generation_key = f"{KEY_PREFIX}:generation"
        self._where = _redis_location(url)

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda: self._client.get(key))
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._call(lambda: self._client.set(key, value, ex=ttl_seconds))

    def generation(self) -> str:
        value = self._call(lambda: self._client.get(self._generation_key))
        return value.decode() if isinstance(value, bytes) else "0"

    def bump_generation(self) -> str:
        return str(self._call(lambda: self._client.incr(self._generation_key)))

    def describe(self) -> str:
        return f"Redis at {self._where}"

    def _call(self, operation: Callable[[], object]) -> object:
        import redis

        try:
            return operation()
        except redis.RedisError as exc:
            raise CacheUnavailable(f"Redis at {self._where} did not answer: {exc}") from exc


def _redis_location(url: str) -> str:
    """host:port/db of a Redis URL, without the password that may be in it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


def _arrow_column(column: pd.Series) -> pa.Array:
    """One column as Arrow. Timezone-aware times go through their UTC numpy values: pyarrow's
    own path reads `Series.values`, which pandas 3 deprecates for them."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        naive = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        return pa.array(naive, type=pa.timestamp(column.dtype.unit, tz=str(column.dtype.tz)), from_pandas=True)  # fmt: skip
    return pa.Array.from_pandas(column)


def frame_to_bytes(frame: pd.DataFrame) -> bytes:
    """Arrow IPC stream of a frame (its index is dropped: query results carry none)."""
    table = pa.Table.from_arrays(
        [_arrow_column(frame[name]) for name in frame.columns],
        names=[str(name) for name in frame.columns],
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def frame_from_bytes(payload: bytes) -> pd.DataFrame:
    with pa.ipc.open_stream(pa.py_buffer(payload)) as reader:
        return reader.read_all().to_pandas()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0


class ServingCache:
    """Get-or-compute for query results, keyed by (namespace, generation, name, parameters).

    `namespace` separates warehouses sharing one Redis (the queries module passes a digest of
    the database it reads). A backend that fails is logged and skipped: the page computes the
    result itself rather than showing an error because a cache is down.
    """

    def __init__(self, backend: CacheBackend, ttl_seconds: int, namespace: str = "") -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.backend = backend
        self.ttl_seconds = ttl_seconds
        self.namespace = namespace
        self.stats = CacheStats()

    def key(self, generation: str, name: str, params: tuple[object, ...]) -> str:
        digest = hashlib.sha256(repr(params).encode()).hexdigest()[:24]
        return f"{KEY_PREFIX}:{self.namespace}:{generation}:{name}:{digest}"

    def get_or_compute(
        self, name: str, params: tuple[object, ...], compute: Callable[[], pd.DataFrame]
    ) -> pd.DataFrame:
        try:
            key = self.key(self.backend.generation(), name, params)
            cached = self.backend.get(key)
        except CacheUnavailable as exc:
            self.stats.errors += 1
            log.warning("serving cache skipped: %s", exc)
            return compute()
        if cached is not None:
            self.stats.hits += 1
            return frame_from_bytes(cached)
        self.stats.misses += 1
        frame = compute()
        try:
            self.backend.set(key, frame_to_bytes(frame), self.ttl_seconds)
        except CacheUnavailable as exc:
            self.stats.errors += 1
            log.warning("serving cache not written: %s", exc)
        return frame

    def refresh(self) -> str:
        """Start a new generation: every cached result is stale from now on."""
        return self.backend.bump_generation()


def backend_for(settings: Settings) -> CacheBackend:
    """Redis when REDIS_URL is set, otherwise the in-process cache."""
    if settings.redis_url is not None:
        return RedisBackend(settings.redis_url.get_secret_value())
    return MemoryBackend(settings.data_path / GENERATION_FILE)


_shared: dict[tuple[str, str, int], ServingCache] = {}
_shared_lock = threading.Lock()


def serving_cache(namespace: str = "", settings: Settings | None = None) -> ServingCache:
    """The process-wide cache for a namespace: one per backend and TTL, so in-process entries
    persist between Streamlit reruns and Redis connections are pooled."""
    settings = settings or get_settings()
    location = (
        settings.redis_url.get_secret_value()
        if settings.redis_url is not None
        else str(settings.data_path / GENERATION_FILE)
    )
    identity = (location, namespace, settings.dashboard.cache_ttl_seconds)
    with _shared_lock:
        cache = _shared.get(identity)
        if cache is None:
            cache = ServingCache(
                backend_for(settings), settings.dashboard.cache_ttl_seconds, namespace
            )
            _shared[identity] = cache
        return cache


def refresh(settings: Settings | None = None) -> str:
    """Invalidate every dashboard result (the gold DAG's last task). Raises CacheUnavailable
    when Redis is configured but does not answer, so the task shows the failure."""
    settings = settings or get_settings()
    backend = backend_for(settings)
    generation = backend.bump_generation()
    log.info("serving cache refreshed: %s, generation %s", backend.describe(), generation)
    return generation
