"""The serving cache: results kept for the TTL, shared through Redis, invalidated by `refresh()`
from another process (the gold DAG), and a broken Redis never breaks a page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.errors import CacheUnavailable
from crypto_analytics.serving_cache import (
    KEY_PREFIX,
    MemoryBackend,
    RedisBackend,
    ServingCache,
    backend_for,
    frame_from_bytes,
    frame_to_bytes,
    refresh,
    serving_cache,
)

#: A Redis database of its own, so the tests never bump the generation a running dashboard uses.
TEST_REDIS = "redis://127.0.0.1:6379/13"
NO_REDIS = "redis://127.0.0.1:1/0"


class Counter:
    """A compute function that counts its calls and returns a frame naming the call."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> pd.DataFrame:
        self.calls += 1
        return pd.DataFrame({"call": [self.calls], "value": [1.5]})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(TEST_REDIS)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {TEST_REDIS}: {exc}")
    yield TEST_REDIS
    for key in client.scan_iter(f"{KEY_PREFIX}:*"):
        client.delete(key)


def test_frames_survive_the_round_trip_with_their_types() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["BTC", None],
            "price": [67012.5, float("nan")],
            "at": pd.to_datetime(["2024-01-01T00:00Z", "2024-01-01T01:00Z"]),
            "count": [3, 4],
            "flag": [True, False],
        }
    )
    back = frame_from_bytes(frame_to_bytes(frame))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert str(back["at"].dt.tz) == "UTC"


def test_memory_cache_keeps_a_result_for_the_ttl_only(tmp_path: Path) -> None:
    clock = Clock()
    cache = ServingCache(MemoryBackend(tmp_path / "generation", timer=clock), ttl_seconds=300)
    compute = Counter()
    first = cache.get_or_compute("prices", ("BTC",), compute)
    clock.now += 299
    again = cache.get_or_compute("prices", ("BTC",), compute)
    assert compute.calls == 1 and first.equals(again)
    assert cache.get_or_compute("prices", ("ETH",), compute)["call"].iloc[0] == 2  # other params
    clock.now += 2  # 301 s after the first read: expired
    assert cache.get_or_compute("prices", ("BTC",), compute)["call"].iloc[0] == 3
    assert (cache.stats.hits, cache.stats.misses) == (1, 3)


def test_a_caller_mutating_its_frame_does_not_change_the_cached_copy(tmp_path: Path) -> None:
    cache = ServingCache(MemoryBackend(tmp_path / "generation"), ttl_seconds=300)
    frame = cache.get_or_compute("prices", (), Counter())
    frame.loc[0, "value"] = -1.0
    assert cache.get_or_compute("prices", (), Counter())["value"].iloc[0] == 1.5


def test_refresh_from_another_process_invalidates_the_memory_cache(tmp_path: Path) -> None:
    """The DAG's refresh runs in an Airflow worker; the dashboard sees the generation file."""
    dashboard = ServingCache(MemoryBackend(tmp_path / "generation"), ttl_seconds=300)
    dag_side = ServingCache(MemoryBackend(tmp_path / "generation"), ttl_seconds=300)
    compute = Counter()
    dashboard.get_or_compute("prices", (), compute)
    dashboard.get_or_compute("prices", (), compute)
    assert compute.calls == 1
    dag_side.refresh()
    dashboard.get_or_compute("prices", (), compute)
    assert compute.calls == 2


def test_settings_pick_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(backend_for(get_settings()), MemoryBackend)
    monkeypatch.setenv("REDIS_URL", TEST_REDIS)
    get_settings.cache_clear()
    backend = backend_for(get_settings())
    assert isinstance(backend, RedisBackend)
    assert backend.describe() == "Redis at 127.0.0.1:6379/13"


def test_redis_cache_is_shared_and_expires_on_the_server(redis_url: str) -> None:
    import redis

    namespace = uuid.uuid4().hex
    one = ServingCache(RedisBackend(redis_url), ttl_seconds=300, namespace=namespace)
    other = ServingCache(RedisBackend(redis_url), ttl_seconds=300, namespace=namespace)
    compute = Counter()
    one.get_or_compute("prices", ("BTC",), compute)
    shared = other.get_or_compute("prices", ("BTC",), compute)
    assert compute.calls == 1 and shared["call"].iloc[0] == 1
    key = one.key(one.backend.generation(), "prices", ("BTC",))
    ttl = redis.Redis.from_url(redis_url).ttl(key)
    assert 0 < ttl <= 300


def test_refresh_invalidates_every_redis_reader(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    cache = serving_cache(uuid.uuid4().hex)
    compute = Counter()
    cache.get_or_compute("prices", (), compute)
    cache.get_or_compute("prices", (), compute)
    before = cache.backend.generation()
    assert refresh() != before  # the DAG task's call
    cache.get_or_compute("prices", (), compute)
    assert compute.calls == 2


def test_an_unreachable_redis_costs_the_cache_not_the_page() -> None:
    cache = ServingCache(RedisBackend(NO_REDIS), ttl_seconds=300)
    compute = Counter()
    assert cache.get_or_compute("prices", (), compute)["call"].iloc[0] == 1
    assert cache.get_or_compute("prices", (), compute)["call"].iloc[0] == 2
    assert cache.stats.errors == 2


def test_refresh_fails_loudly_when_redis_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DAG task must show the failure rather than leave stale results unnoticed."""
    monkeypatch.setenv("REDIS_URL", NO_REDIS)
    get_settings.cache_clear()
    with pytest.raises(CacheUnavailable, match=r"Redis at 127\.0\.0\.1:1/0 did not answer"):
        refresh()


def test_ttl_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ttl_seconds must be positive"):
        ServingCache(MemoryBackend(tmp_path / "g"), ttl_seconds=0)
