"""E-mail against a real local SMTP server: the message, authentication, retries, failures."""

from __future__ import annotations

import socket

import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.errors import ConfigError, NotificationError
from crypto_analytics.notifications.smtp import Attachment, email_enabled, send_email


def test_message_arrives_with_text_html_and_attachment(smtp_server):
    send_email(
        "Weekly rebalancing",
        "plain body",
        html="<h1>html body</h1>",
        attachments=[Attachment("report.md", b"# report\n")],
    )
    [(envelope, message)] = smtp_server.messages
    assert envelope.rcpt_tos == ["quant@example.com"]
    assert envelope.mail_from == "crypto-analytics@localhost"
    assert message["Subject"] == "Weekly rebalancing"
    assert message.get_body(("plain",)).get_content().strip() == "plain body"
    assert "<h1>html body</h1>" in message.get_body(("html",)).get_content()
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == "report.md"
    assert attached.get_content() == "# report\n"


def test_wrong_password_fails_at_once_without_echoing_it(smtp_server, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-password-123")
    get_settings.cache_clear()
    with pytest.raises(NotificationError, match="authentication refused") as failure:
        send_email("s", "t")
    assert "wrong-password-123" not in str(failure.value)
    assert smtp_server.messages == []


def test_transient_refusal_is_retried_then_delivered(smtp_server):
    smtp_server.reject_next = ["451 Try again later"]
    send_email("retry me", "body")
    assert [m["Subject"] for _, m in smtp_server.messages] == ["retry me"]


def test_permanent_refusal_is_not_retried(smtp_server):
    smtp_server.reject_next = ["554 Transaction failed", "554 Transaction failed"]
    with pytest.raises(NotificationError, match="554"):
        send_email("refused", "body")
    assert smtp_server.reject_next == ["554 Transaction failed"]  # one attempt, not two


def test_unreachable_server_fails_after_the_configured_attempts(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__PORT", str(port))
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__SECURITY", "none")
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__RECIPIENTS", '["a@example.com"]')
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__RETRY_BASE_SECONDS", "0")
    get_settings.cache_clear()
    with pytest.raises(NotificationError, match="connection refused"):
        send_email("s", "t")


def test_not_configured_is_a_config_error_naming_the_setting(monkeypatch):
    assert not email_enabled()
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__RECIPIENTS", '["a@example.com"]')
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="notifications.smtp.host"):
        send_email("s", "t")
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__RECIPIENTS", "[]")
    monkeypatch.setenv("CRYPTO_NOTIFICATIONS__SMTP__HOST", "127.0.0.1")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="notifications.smtp.recipients"):
        send_email("s", "t")
