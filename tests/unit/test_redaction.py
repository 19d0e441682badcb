"""One redaction for every text that leaves the process: secrets in every place a URL, a header,
a key=value pair or a server's echo can hold them are masked."""

from __future__ import annotations

import logging

import pytest

from crypto_analytics.errors import ConfigError, SourceError
from crypto_analytics.redaction import MASK, RedactingFilter, redact, register_secret

SECRET = "s3cr3t-Value-42"


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://admin:{SECRET}@db:5432/crypto",  # URL user-info
        f"postgresql://admin@db/crypto?sslmode=require&password={SECRET}",  # URL query
        f"https://api.example.com/v3/coins?x_cg_demo_api_key={SECRET}&ids=bitcoin",
        f"https://query2.finance.yahoo.com/v8/finance/chart/BTC-USD?crumb={SECRET}",
        f"https://api.example.com/x?access_token={SECRET}",
        f"host=db user=admin password={SECRET} dbname=crypto",  # libpq conninfo
        f"headers: {{'x-cg-demo-api-key': '{SECRET}', 'Accept': 'json'}}",  # dict repr
        f'{{"apiKey": "{SECRET}"}}',  # JSON
        f"Authorization: Bearer {SECRET}",  # header line
        f"X-MBX-APIKEY: {SECRET}",
        f"api_secret={SECRET}",
    ],
)
def test_secrets_in_every_position_are_masked(text):
    cleaned = redact(text)
    assert SECRET not in cleaned
    assert MASK in cleaned


def test_values_of_secret_environment_variables_are_masked_anywhere(monkeypatch):
    monkeypatch.setenv("COINGECKO_API_KEY", "CG-9f8e7d6c5b")
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.slack.com/services/T00/B00/XYZsecret")
    echoed = 'HTTP 401: {"error": "invalid api key CG-9f8e7d6c5b"}'
    assert redact(echoed) == 'HTTP 401: {"error": "invalid api key ***"}'
    assert "XYZsecret" not in redact(
        "posting to https://hooks.slack.com/services/T00/B00/XYZsecret"
    )


def test_the_password_inside_a_url_variable_is_masked_alone(monkeypatch):
    monkeypatch.setenv("CRYPTO_DATABASE_URL", "postgresql://u:pa55word-xyz@h/db")
    assert redact("auth failed using pa55word-xyz") == "auth failed using ***"


def test_registered_and_url_encoded_secrets_are_masked():
    register_secret("p@ss/word with space")
    assert redact("p%40ss%2Fword%20with%20space and p%40ss%2Fword+with+space") == "*** and ***"


def test_ordinary_text_is_left_alone():
    for text in [
        "duplicate key value violates unique constraint DETAIL: Key (source_api, symbol)=(a, b)",
        'FATAL:  password authentication failed for user "crypto"',
        "binance BTC/USDT 1h: 1000 candles in 1 pages",
        "https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1000",
        "primary key: (source_api, symbol)",
    ]:
        assert redact(text) == text


def test_platform_errors_are_redacted_when_created():
    error = SourceError("coingecko", f"HTTP 500 from https://x.io/a?api_key={SECRET}")
    assert SECRET not in str(error)
    assert SECRET not in str(ConfigError(f"cannot connect to postgresql://u:{SECRET}@h/db"))


def test_the_log_filter_redacts_messages_arguments_and_tracebacks():
    record = logging.LogRecord(
        "x",
        logging.ERROR,
        __file__,
        1,
        "connecting to %s",
        (f"postgresql://u:{SECRET}@h/db",),
        None,
    )
    try:
        raise RuntimeError(f"token={SECRET}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert SECRET not in record.getMessage()
    assert SECRET not in (record.exc_text or "")
