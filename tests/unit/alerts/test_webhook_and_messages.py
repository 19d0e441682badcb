"""Webhook POSTs against a local HTTP server (Slack's shape, failures that never leak the URL's
token) and what each channel's message says."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from werkzeug import Response

from crypto_analytics.alerts.messages import email_subject, email_text, webhook_payload
from crypto_analytics.alerts.state import AlertEvent
from crypto_analytics.errors import ConfigError, NotificationError
from crypto_analytics.notifications.webhook import post_json, safe_target, slack_payload

SECRET_PATH = "/services/T000/B000/s3cr3t-t0ken"

EVENT = AlertEvent(
    alert_id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    rule_id="btc_below_40k",
    rule_type="price_threshold",
    subject="BTC",
    severity="critical",
    fired_at=datetime(2024, 5, 1, 12, 3, tzinfo=UTC),
    message="BTC 38,120.50 below 40,000.00",
    evaluated_by="stream",
    notified=True,
    value=38120.5,
    threshold=40000.0,
    observed_at=datetime(2024, 5, 1, 12, 2, tzinfo=UTC),
    details={"source": "the binance 1m stream"},
)


def test_slack_payload_posts_to_a_local_receiver(httpserver):
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data("ok")
    payload = webhook_payload(EVENT, "slack")
    post_json(httpserver.url_for(SECRET_PATH), payload, timeout=5)
    ((request, _),) = httpserver.log
    body = json.loads(request.data)
    assert request.headers["Content-Type"] == "application/json"
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("CRITICAL btc_below_40k: BTC: ")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in body["blocks"][2]["fields"]
    }
    assert fields["*Value*"] == "38,120.50" and fields["*Threshold*"] == "40,000.00"
    assert "12345678-1234-5678-1234-567812345678" in body["blocks"][3]["elements"][0]["text"]


def test_json_payload_carries_every_field():
    body = webhook_payload(EVENT, "json")
    assert body["alert"]["alert_id"] == str(EVENT.alert_id)
    assert body["alert"]["observed_at"] == "2024-05-01T12:02:00+00:00"
    assert body["alert"]["details"] == {"source": "the binance 1m stream"}


def test_slack_markup_is_escaped():
    payload = slack_payload("t", "<!channel> & friends")
    assert payload["blocks"][1]["text"]["text"] == "&lt;!channel&gt; &amp; friends"


def test_a_refusing_receiver_fails_without_naming_the_secret_path(httpserver):
    httpserver.expect_request(SECRET_PATH).respond_with_response(
        Response("no such hook", status=404)
    )
    with pytest.raises(NotificationError) as raised:
        post_json(httpserver.url_for(SECRET_PATH), {"text": "x"}, timeout=5)
    assert "HTTP 404" in str(raised.value) and "s3cr3t" not in str(raised.value)
    assert raised.value.__cause__ is None  # requests' own message quotes the full URL


def test_an_unreachable_receiver_and_a_bad_url():
    with pytest.raises(NotificationError) as raised:
        post_json(f"http://127.0.0.1:9{SECRET_PATH}", {"text": "x"}, timeout=2)
    assert "s3cr3t" not in str(raised.value) and "127.0.0.1:9" in str(raised.value)
    with pytest.raises(ConfigError, match="http"):
        post_json("hooks.slack.com/services/x", {"text": "x"}, timeout=2)
    assert (
        safe_target("https://user:pw@hooks.example.com:8443/a/b?c=d")
        == "https://hooks.example.com:8443"
    )


def test_email_says_what_fired_and_where_to_look():
    assert email_subject(EVENT) == (
        "[crypto-analytics] CRITICAL btc_below_40k: BTC - BTC 38,120.50 below 40,000.00"
    )
    text = email_text(EVENT)
    assert "Data as of: 2024-05-01 12:02 UTC" in text
    assert "Alert id: 12345678-1234-5678-1234-567812345678" in text
    assert "gold.alerts" in text
