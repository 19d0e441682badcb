"""CoinGeckoSource against a local server serving recorded CoinGecko bodies and its failures."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import (
    BadPayload,
    ConfigError,
    HistoryLimitExceeded,
    RateLimited,
    SourceUnavailable,
)
from crypto_analytics.ingestion.rate_budget import RequestBudget
from crypto_analytics.ingestion.sources.coingecko import CoinGeckoSource

SAMPLES = Path("api_samples/coingecko")
MARKETS = "/api/v3/coins/markets"
BTC_RANGE = "/api/v3/coins/bitcoin/market_chart/range"
# /coins/markets file: last_updated 2025-03-04 14:45:40..51 UTC.
SNAPSHOT_NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
# bitcoin_data.json: 720 points 2024-11-03 21:20 -> 2024-12-03 20:57 UTC.
HISTORY_NOW = datetime(2024, 12, 5, tzinfo=UTC)
NOV_3 = datetime(2024, 11, 3, tzinfo=UTC)
DEC_4 = datetime(2024, 12, 4, tzinfo=UTC)
HISTORY_LIMIT_BODY = {
    "error": {
        "status": {
            "timestamp": "2024-04-20T22:00:05.123+00:00",
            "error_code": 10012,
            "error_message": "Your request exceeds the allowed time range. Public API users are "
            "limited to querying historical data within the past 365 days. Upgrade to a paid "
            "plan to enjoy full historical data access: https://www.coingecko.com/en/api/pricing. ",
        }
    }
}


@pytest.fixture
def sample(shared_data: Path) -> Callable[[str], bytes]:
    return lambda name: (shared_data / SAMPLES / name).read_bytes()


@pytest.fixture
def make_source(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CoinGeckoSource]:
    def make(
        now: datetime = HISTORY_NOW,
        plan: str = "keyless",
        key: str | None = None,
        per_page: int = 250,
        budget: RequestBudget | None = None,
        **ingestion: str,
    ) -> CoinGeckoSource:
        monkeypatch.setenv("CRYPTO_SOURCES__COINGECKO__PLAN", plan)
        if key is None:
            monkeypatch.delenv("COINGECKO_API_KEY", raising=False)
        else:
            monkeypatch.setenv("COINGECKO_API_KEY", key)
        for name, value in ingestion.items():
            monkeypatch.setenv(f"CRYPTO_INGESTION__{name.upper()}", value)
        get_settings.cache_clear()
        return CoinGeckoSource(
            get_settings(),
            base_url=httpserver.url_for("/api/v3"),
            budget=budget or RequestBudget(10_000),
            now=lambda: now,
            per_page=per_page,
        )

    return make


def tokens(settings: Settings, *symbols: str) -> list:
    return [settings.token(s) for s in symbols]


def test_snapshot_uses_coins_markets_keeps_raw_and_skips_unknown_tokens(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = sample("RozanovIgor_monkey/coins_markets.json")
    httpserver.expect_request(MARKETS).respond_with_data(body, content_type="application/json")
    source = make_source(now=SNAPSHOT_NOW)

    with caplog.at_level(logging.WARNING):
        result = source.fetch_market_data(
            tokens(source.settings, "BTC", "ETH", "FLOKI"),
            SNAPSHOT_NOW - timedelta(minutes=15),
            SNAPSHOT_NOW,
        )

    assert sorted(result.frame["symbol"]) == ["BTC", "ETH"]
    btc = result.frame[result.frame["symbol"] == "BTC"].iloc[0]
    assert btc["price"] == 79847.0 and btc["circulating_supply"] == 19832115.0
    assert btc["timestamp"] == pd.Timestamp("2025-03-04T14:45:50.155Z")
    assert "FLOKI" in caplog.text and "skipped" in caplog.text
    assert [p.body for p in result.payloads] == [body]
    ((request, _),) = httpserver.log
    assert request.args["ids"] == "bitcoin,ethereum,floki"
    assert request.args["vs_currency"] == "usd"
    assert request.args["per_page"] == "250"


def test_snapshot_paginates_until_every_id_is_seen(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
) -> None:
    coins = json.loads(sample("gusgoros_API_DOCKER_PGADMIN/coins_markets.json"))
    httpserver.expect_request(
        MARKETS,
        query_string={
            "vs_currency": "usd",
            "ids": "bitcoin,ethereum,tether",
            "per_page": "2",
            "page": "1",
        },
    ).respond_with_json(coins[:2])
    httpserver.expect_request(
        MARKETS,
        query_string={
            "vs_currency": "usd",
            "ids": "bitcoin,ethereum,tether",
            "per_page": "2",
            "page": "2",
        },
    ).respond_with_json(coins[2:3])
    source = make_source(now=SNAPSHOT_NOW, per_page=2)

    result = source.fetch_market_data(
        tokens(source.settings, "BTC", "ETH", "USDT"),
        SNAPSHOT_NOW - timedelta(minutes=15),
        SNAPSHOT_NOW,
    )

    assert list(result.frame["symbol"]) == ["BTC", "ETH", "USDT"]
    assert list(result.frame["price"]) == [16730.75, 1218.19, 1.001]
    assert len(result.payloads) == 2 and len(httpserver.log) == 2


def test_history_uses_market_chart_range_in_unix_seconds(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
) -> None:
    body = sample("bonifazdaniel_Python-CRYPTO-project/bitcoin_data.json")
    httpserver.expect_request(BTC_RANGE).respond_with_data(body, content_type="application/json")
    source = make_source()

    result = source.fetch_market_data(tokens(source.settings, "BTC"), NOV_3, DEC_4)

    assert len(result.frame) == 720
    assert result.frame["price"].iloc[0] == 69102.91649492079
    assert result.frame["price"].iloc[-1] == 95665.32463266946
    assert result.payloads[0].body == body
    ((request, _),) = httpserver.log
    assert request.args["from"] == "1730592000"  # 2024-11-03T00:00Z
    assert request.args["to"] == "1733270400"  # 2024-12-04T00:00Z
    assert request.args["vs_currency"] == "usd"


def test_history_skips_a_coin_coingecko_does_not_know(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    httpserver.expect_request("/api/v3/coins/floki/market_chart/range").respond_with_json(
        {"error": "coin not found"}, status=404
    )
    httpserver.expect_request(BTC_RANGE).respond_with_data(
        sample("bonifazdaniel_Python-CRYPTO-project/bitcoin_data.json")
    )
    source = make_source()

    with caplog.at_level(logging.WARNING):
        result = source.fetch_market_data(tokens(source.settings, "FLOKI", "BTC"), NOV_3, DEC_4)

    assert set(result.frame["symbol"]) == {"BTC"} and len(result.frame) == 720
    assert "FLOKI skipped" in caplog.text and "coin not found" in caplog.text


def test_rate_limited_with_retry_after_then_success(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
) -> None:
    httpserver.expect_oneshot_request(BTC_RANGE).respond_with_json(
        {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}},
        status=429,
        headers={"Retry-After": "1"},
    )
    httpserver.expect_request(BTC_RANGE).respond_with_data(
        sample("bonifazdaniel_Python-CRYPTO-project/bitcoin_data.json")
    )
    source = make_source()

    result = source.fetch_market_data(tokens(source.settings, "BTC"), NOV_3, DEC_4)

    assert len(result.frame) == 720
    assert len(httpserver.log) == 2
    assert len(result.payloads) == 1  # only the body that was used


def test_rate_limited_carries_retry_after(
    httpserver: HTTPServer, make_source: Callable[..., CoinGeckoSource]
) -> None:
    httpserver.expect_request(BTC_RANGE).respond_with_data(
        "Throttled", status=429, headers={"Retry-After": "7"}
    )
    source = make_source(max_retries="0")

    with pytest.raises(RateLimited) as caught:
        source.fetch_market_data(tokens(source.settings, "BTC"), NOV_3, DEC_4)
    assert caught.value.retry_after == 7.0


def test_repeated_500_is_source_unavailable(
    httpserver: HTTPServer, make_source: Callable[..., CoinGeckoSource]
) -> None:
    httpserver.expect_request(BTC_RANGE).respond_with_data("<html>oops</html>", status=500)
    source = make_source(max_retries="2")

    with pytest.raises(SourceUnavailable, match="HTTP 500"):
        source.fetch_market_data(tokens(source.settings, "BTC"), NOV_3, DEC_4)
    assert len(httpserver.log) == 3  # no urllib3 retries underneath ours


def test_timeout_is_source_unavailable(
    httpserver: HTTPServer, make_source: Callable[..., CoinGeckoSource]
) -> None:
    answered = threading.Event()

    def slow(request: Request) -> Response:
        time.sleep(0.4)
        answered.set()
        return Response("{}", content_type="application/json")

    httpserver.expect_request(BTC_RANGE).respond_with_handler(slow)
    source = make_source(max_retries="0", http_timeout_seconds="0.1")

    with pytest.raises(SourceUnavailable, match="timed out after 0.1s"):
        source.fetch_market_data(tokens(source.settings, "BTC"), NOV_3, DEC_4)
    answered.wait(5)  # let the server finish, so its late log entry lands in this test


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
def test_malformed_or_truncated_json_is_bad_payload_not_retried(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
    kind: str,
) -> None:
    full = sample("bonifazdaniel_Python-CRYPTO-project/bitcoin_data.json")
    body = b"<!DOCTYPE html><title>Just a moment...</title>" if kind == "malformed" else full[:4096]
    httpserver.expect_request(BTC_RANGE).respond_with_data(body, content_type="application/json")
    source = make_source()

    with pytest.raises(
        BadPayload, match=rf"malformed JSON from .*market_chart/range.* \({len(body)} bytes\)"
    ):
        source.fetch_market_data(tokens(source.settings, "BTC"), NOV_3, DEC_4)
    assert len(httpserver.log) == 1


def test_error_10012_is_history_limit_exceeded(
    httpserver: HTTPServer, make_source: Callable[..., CoinGeckoSource]
) -> None:
    httpserver.expect_request(BTC_RANGE).respond_with_json(HISTORY_LIMIT_BODY, status=401)
    source = make_source(plan="pro", key="pro-secret")  # no local cap: CoinGecko's answer decides

    with pytest.raises(HistoryLimitExceeded, match=r"error 10012 .*past 365 days"):
        source.fetch_market_data(
            tokens(source.settings, "BTC"), datetime(2020, 1, 1, tzinfo=UTC), DEC_4
        )
    assert len(httpserver.log) == 1


def test_keyless_window_reaching_beyond_365_days_is_clamped(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    httpserver.expect_request(BTC_RANGE).respond_with_data(
        sample("bonifazdaniel_Python-CRYPTO-project/bitcoin_data.json")
    )
    source = make_source()

    with caplog.at_level(logging.WARNING):
        result = source.fetch_market_data(
            tokens(source.settings, "BTC"), datetime(2023, 1, 1, tzinfo=UTC), DEC_4
        )

    # 365 days before 2024-12-05T00:00Z is 2023-12-06T00:00Z, plus the 5-minute margin.
    ((request, _),) = httpserver.log
    assert request.args["from"] == str(int(datetime(2023, 12, 6, 0, 5, tzinfo=UTC).timestamp()))
    assert "365 days" in caplog.text and "pro key" in caplog.text
    assert len(result.frame) == 720


def test_demo_window_wholly_beyond_the_cap_raises_without_a_request(
    httpserver: HTTPServer, make_source: Callable[..., CoinGeckoSource]
) -> None:
    source = make_source(plan="demo", key="demo-secret")

    with pytest.raises(HistoryLimitExceeded, match="demo plan serves only the last 365 days"):
        source.fetch_market_data(
            tokens(source.settings, "BTC"),
            datetime(2022, 1, 1, tzinfo=UTC),
            datetime(2022, 2, 1, tzinfo=UTC),
        )
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("plan", "header", "query_key"),
    [
        ("demo", "x-cg-demo-api-key", "x_cg_demo_api_key"),
        ("pro", "x-cg-pro-api-key", "x_cg_pro_api_key"),
    ],
)
def test_key_is_sent_in_the_plan_header_never_in_the_url(
    httpserver: HTTPServer,
    make_source: Callable[..., CoinGeckoSource],
    sample: Callable[[str], bytes],
    plan: str,
    header: str,
    query_key: str,
) -> None:
    httpserver.expect_request(BTC_RANGE).respond_with_data(
        sample("bonifazdaniel_Python-CRYPTO-project/bitcoin_data.json")
    )
    source = make_source(plan=plan, key=f"{plan}-secret")

    result = source.fetch_market_data(tokens(source.settings, "BTC"), NOV_3, DEC_4)

    ((request, _),) = httpserver.log
    assert request.headers[header] == f"{plan}-secret"
    assert query_key not in request.args
    assert f"{plan}-secret" not in result.payloads[0].request


def test_pro_plan_defaults_to_the_pro_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTO_SOURCES__COINGECKO__PLAN", "pro")
    monkeypatch.setenv("COINGECKO_API_KEY", "pro-secret")
    get_settings.cache_clear()
    assert (
        CoinGeckoSource(get_settings()).api.api_base_url == "https://pro-api.coingecko.com/api/v3/"
    )


def test_paid_plan_without_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTO_SOURCES__COINGECKO__PLAN", "demo")
    monkeypatch.delenv("COINGECKO_API_KEY", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="demo.*COINGECKO_API_KEY"):
        CoinGeckoSource(get_settings())
