"""The CoinGecko request budget: N per rolling minute, shared per process, drawn per request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from crypto_analytics.config import get_settings
from crypto_analytics.errors import ConfigError
from crypto_analytics.ingestion.rate_budget import RequestBudget
from crypto_analytics.ingestion.sources.coingecko import CoinGeckoSource


class FakeClock:
    """A clock that only moves when the budget sleeps, so waits are exact and instant."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_up_to_the_rate_then_waits_for_the_oldest_slot() -> None:
    clock = FakeClock()
    budget = RequestBudget(10, clock=clock, sleep=clock.sleep)

    for _ in range(10):
        assert budget.acquire() == 0.0
    clock.now += 15.0
    assert budget.acquire() == 45.0  # the first request leaves the window 60 s after it was sent
    assert clock.sleeps == [45.0]
    assert budget.acquire() == 0.0  # the second request also left the window at that same instant


def test_rate_below_one_per_minute_spaces_requests() -> None:
    clock = FakeClock()
    budget = RequestBudget(0.5, clock=clock, sleep=clock.sleep)

    budget.acquire()
    assert budget.acquire() == 120.0


@pytest.mark.parametrize("rate", [0, -3, float("nan")])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ConfigError, match="requests_per_minute must be a positive number"):
        RequestBudget(rate)


def test_sources_of_one_process_share_the_plan_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTO_SOURCES__COINGECKO__PLAN", "demo")
    monkeypatch.setenv("COINGECKO_API_KEY", "demo-secret")
    get_settings.cache_clear()

    first, second = CoinGeckoSource(get_settings()), CoinGeckoSource(get_settings())

    assert first.budget is second.budget
    assert first.budget.requests_per_minute == 30.0  # config.yaml: demo: 30


def test_every_request_draws_from_the_budget(
    httpserver: HTTPServer, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coins = json.loads(
        (
            shared_data / "api_samples/coingecko/gusgoros_API_DOCKER_PGADMIN/coins_markets.json"
        ).read_text()
    )
    for page in range(3):
        httpserver.expect_request(
            "/api/v3/coins/markets",
            query_string={
                "vs_currency": "usd",
                "ids": "bitcoin,ethereum,tether",
                "per_page": "1",
                "page": str(page + 1),
            },
        ).respond_with_json(coins[page : page + 1])
    monkeypatch.delenv("COINGECKO_API_KEY", raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    clock = FakeClock()
    now = datetime(2023, 1, 2, 17, 10, tzinfo=UTC)
    source = CoinGeckoSource(
        settings,
        base_url=httpserver.url_for("/api/v3"),
        budget=RequestBudget(2, clock=clock, sleep=clock.sleep),
        now=lambda: now,
        per_page=1,
    )

    result = source.fetch_market_data(
        [settings.token(s) for s in ("BTC", "ETH", "USDT")], now - timedelta(minutes=15), now
    )

    assert list(result.frame["symbol"]) == ["BTC", "ETH", "USDT"]
    assert clock.sleeps == [60.0]  # third page waited for the first request's slot
