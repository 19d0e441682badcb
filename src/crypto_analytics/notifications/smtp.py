"""E-mail over real SMTP, for the rebalancing report and alerts.

Why smtplib and not a service SDK: every mail relay speaks SMTP, and a local test server
(aiosmtpd) checks the real conversation, TLS mode and message. Transient failures (refused or
dropped connections, timeouts, 4xx answers) are retried with tenacity's backoff; authentication,
refused recipients and 5xx answers fail at once, since a retry cannot fix them. Callers keep what
the message carried (the report file, the alert row) before sending, so a failed send loses
nothing; this module only reports the failure as a `NotificationError` whose text never holds the
password.
"""

from __future__ import annotations

import logging
import mimetypes
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from crypto_analytics.config import Settings, SmtpConfig, get_settings
from crypto_analytics.errors import ConfigError, NotificationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    """A file carried by a message (a report's HTML or a chart)."""

    filename: str
    content: bytes
    mime_type: str | None = None


def email_enabled(settings: Settings | None = None) -> bool:
    """Whether e-mail is configured: an SMTP host and at least one recipient."""
    smtp = (settings or get_settings()).notifications.smtp
    return bool(smtp.host and smtp.recipients)


def build_message(
    smtp: SmtpConfig,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    recipients: Sequence[str] | None = None,
) -> EmailMessage:
    """A multipart message: plain text, an HTML alternative when given, then the attachments."""
    to = list(recipients if recipients is not None else smtp.recipients)
    if not to:
        raise ConfigError(
            "no e-mail recipients: set notifications.smtp.recipients in config/config.yaml "
            "(or CRYPTO_NOTIFICATIONS__SMTP__RECIPIENTS='[\"you@example.com\"]')"
        )
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = smtp.sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for attachment in attachments:
        mime = attachment.mime_type or mimetypes.guess_type(attachment.filename)[0]
        maintype, _, subtype = (mime or "application/octet-stream").partition("/")
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError))


def _deliver(smtp: SmtpConfig, password: str | None, message: EmailMessage) -> None:
    if not smtp.host:
        raise ConfigError(
            "e-mail is off: set notifications.smtp.host (CRYPTO_NOTIFICATIONS__SMTP__HOST)"
        )
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    with client:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, password or "")
        refused = client.send_message(message)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


def send_message(message: EmailMessage, settings: Settings | None = None) -> None:
    """Send a built message, retrying transient failures; NotificationError when it cannot."""
    settings = settings or get_settings()
    smtp = settings.notifications.smtp
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    where = f"{smtp.host}:{smtp.port} ({smtp.security})"

    def before_sleep(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        exc = outcome.exception() if outcome else None
        log.warning("e-mail to %s failed (%s); retrying", where, _describe(exc))

    retrying = Retrying(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(smtp.max_attempts),
        wait=wait_exponential_jitter(
            multiplier=smtp.retry_base_seconds, max=60, jitter=smtp.retry_base_seconds
        ),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        retrying(_deliver, smtp, password, message)
    except ConfigError:
        raise
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise NotificationError(
            f"e-mail {message['Subject']!r} to {message['To']} via {where} failed: {_describe(exc)}"
        ) from exc
    log.info("e-mail %r sent to %s via %s", message["Subject"], message["To"], where)


def send_email(
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    recipients: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> EmailMessage:
    """Build and send one message to the configured (or given) recipients; returns it."""
    settings = settings or get_settings()
    message = build_message(
        settings.notifications.smtp, subject, text, html, attachments, recipients
    )
    send_message(message, settings)
    return message


def _describe(exc: BaseException | None) -> str:
    """One line about an SMTP failure. Server replies are kept (they say what was refused) but
    never the credentials, which smtplib does not echo."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"authentication refused (code {exc.smtp_code}): check the username and SMTP_PASSWORD"
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + ", ".join(sorted(exc.recipients))
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        return f"server answered {exc.smtp_code} {reply}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
