"""A host that cannot be reached (its name does not resolve, or nothing listens on the port)
fails at once with SourceUnreachable, for every client stack: plain requests (the Binance
archive), pycoingecko, ccxt and yfinance's curl_cffi; it is never retried like a rate limit."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta

import ccxt
import pytest
from curl_cffi import requests as curl_requests

from crypto_analytics.config import get_settings
from crypto_analytics.errors import SourceUnreachable
from crypto_analytics.ingestion.http import unreachable_reason
from crypto_analytics.ingestion.sources.binance_archive import BinanceArchiveSource
from crypto_analytics.ingestion.sources.coingecko import CoinGeckoSource
from crypto_analytics.ingestion.sources.exchange import ExchangeSource, build_exchange
from crypto_analytics.ingestion.sources.yahoo import YahooSource

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 1, 3, tzinfo=UTC)


def _refused_origin() -> str:
    """http://127.0.0.1:PORT where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


HOSTS = {
    "refused": (_refused_origin, "it refused the connection"),
    "unresolvable": (lambda: "http://nonexistent.invalid", "its name does not resolve"),
}


@pytest.fixture
def patient_settings(monkeypatch):
    """Retries that would be visible: five attempts with logged backoff."""
    monkeypatch.setenv("CRYPTO_INGESTION__MAX_RETRIES", "5")
    get_settings.cache_clear()
    return get_settings()


def _assert_failed_once(caplog, raised, reason: str) -> None:
    assert reason in str(raised.value)
    assert "not retried" in str(raised.value)
    assert "retrying in" not in caplog.text  # call_with_retries logs every retry it sleeps for


@pytest.mark.parametrize("host", HOSTS, ids=list(HOSTS))
def test_binance_archive(patient_settings, caplog, host):
    origin, reason = HOSTS[host][0](), HOSTS[host][1]
    caplog.set_level(logging.WARNING)
    source = BinanceArchiveSource(patient_settings)
    source.config = source.config.model_copy(update={"base_url": origin})
    with pytest.raises(SourceUnreachable) as raised:
        source.fetch_ohlcv(patient_settings.token("BTC"), "1d", START, END)
    _assert_failed_once(caplog, raised, reason)


@pytest.mark.parametrize("host", HOSTS, ids=list(HOSTS))
def test_coingecko(patient_settings, caplog, host):
    origin, reason = HOSTS[host][0](), HOSTS[host][1]
    caplog.set_level(logging.WARNING)
    source = CoinGeckoSource(patient_settings, base_url=origin + "/api/v3")
    with pytest.raises(SourceUnreachable) as raised:
        now = datetime.now(UTC)  # a window ending now: the /coins/markets snapshot
        source.fetch_market_data([patient_settings.token("BTC")], now - timedelta(hours=1), now)
    _assert_failed_once(caplog, raised, reason)


@pytest.mark.parametrize("host", HOSTS, ids=list(HOSTS))
def test_exchange_through_ccxt(patient_settings, caplog, host):
    origin, reason = HOSTS[host][0](), HOSTS[host][1]
    caplog.set_level(logging.WARNING)
    exchange = build_exchange("binance", patient_settings)
    exchange.urls["api"] = {key: f"{origin}/api/v3" for key in exchange.urls["api"]}
    source = ExchangeSource(patient_settings, exchange)
    with pytest.raises(SourceUnreachable) as raised:
        source.fetch_ohlcv(patient_settings.token("BTC"), "1d", START, END)
    _assert_failed_once(caplog, raised, reason)
    assert isinstance(raised.value.__cause__, ccxt.NetworkError)


class _CurlClient:
    """yfinance's transport (curl_cffi) without its cookie/crumb round trip to Yahoo."""

    def get(self, url, params=None, timeout=30):
        return curl_requests.get(url, params=params, timeout=timeout)


@pytest.mark.parametrize("host", HOSTS, ids=list(HOSTS))
def test_yahoo_through_curl_cffi(patient_settings, caplog, host):
    origin, reason = HOSTS[host][0](), HOSTS[host][1]
    caplog.set_level(logging.WARNING)
    source = YahooSource(patient_settings, base_url=origin, client=_CurlClient())
    with pytest.raises(SourceUnreachable) as raised:
        source.fetch_ohlcv(patient_settings.token("BTC"), "1d", START, END)
    _assert_failed_once(caplog, raised, reason)


def test_other_network_failures_are_not_called_unreachable():
    assert unreachable_reason(TimeoutError("timed out")) is None
    assert unreachable_reason(ConnectionResetError("reset by peer")) is None
    assert unreachable_reason(RuntimeError("x")) is None
