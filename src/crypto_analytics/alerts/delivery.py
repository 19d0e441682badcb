"""The outbox worker: send pending notifications, keep the failed ones for a later try.

Why an outbox (alerts.deliveries) rather than sending where an alert fires: the alert and one row
per channel commit together, so a failing SMTP relay or webhook never loses the alert; each
channel fails and retries on its own (e-mail can be down while Slack works). A pass claims due
rows with a lease (`for update skip locked`, then next_attempt_at moved past the lease), so the
stream, the Airflow task and the CLI can deliver at once without sending anything twice, and a
process killed mid-send leaves the row to be retried when the lease expires. A failed attempt
waits retry_base x 2^(attempts-1) seconds, capped at retry_max, and is retried until delivered.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from crypto_analytics.alerts.messages import email_subject, email_text, webhook_payload
from crypto_analytics.alerts.state import AlertEvent
from crypto_analytics.config import Settings
from crypto_analytics.errors import ConfigError, NotificationError
from crypto_analytics.notifications.smtp import email_enabled, send_email
from crypto_analytics.notifications.webhook import post_json

log = logging.getLogger(__name__)

#: A claimed row is not claimed again for this long (a send takes seconds; SMTP retries included).
LEASE = timedelta(minutes=5)


def available_channels(settings: Settings) -> set[str]:
    """The channels configured now: e-mail with an SMTP host and recipients, the webhook with
    ALERT_WEBHOOK_URL."""
    channels = set()
    if email_enabled(settings):
        channels.add("email")
    if settings.alert_webhook_url is not None and settings.alert_webhook_url.get_secret_value():
        channels.add("webhook")
    return channels


def retry_delay(attempts: int, settings: Settings) -> timedelta:
    """How long a delivery waits after its n-th failed attempt."""
    config = settings.alerts
    seconds = min(config.retry_base_seconds * 2 ** max(0, attempts - 1), config.retry_max_seconds)
    return timedelta(seconds=seconds)


@dataclass
class DeliveryReport:
    """One pass: what was sent, what failed (one line each), what is still waiting."""

    delivered: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    pending: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "delivered": len(self.delivered),
            "failed": list(self.failed),
            "pending": self.pending,
        }


def send(channel: str, event: AlertEvent, settings: Settings) -> None:
    """One attempt on one channel; NotificationError or ConfigError when it did not go out."""
    if channel == "email":
        send_email(email_subject(event), email_text(event), settings=settings)
    elif channel == "webhook":
        if settings.alert_webhook_url is None:
            raise ConfigError("webhook is off: set ALERT_WEBHOOK_URL (see secrets.env.example)")
        post_json(
            settings.alert_webhook_url.get_secret_value(),
            webhook_payload(event, settings.alerts.webhook_format),
            timeout=settings.alerts.webhook_timeout_seconds,
        )
    else:
        raise ConfigError(f"unknown alert channel {channel!r}; choose from: email, webhook")


_CLAIM = """
with due as (
    select alert_id, channel from alerts.deliveries
    where status = 'pending' and next_attempt_at <= %(now)s
    order by next_attempt_at, created_at
    limit %(limit)s
    for update skip locked
)
update alerts.deliveries d
set next_attempt_at = %(lease_until)s, attempts = d.attempts + 1, last_attempt_at = %(now)s
from due
where d.alert_id = due.alert_id and d.channel = due.channel
returning d.alert_id, d.channel, d.attempts
"""

_EVENT = """
select alert_id, rule_id, rule_type, subject, severity, fired_at, message, evaluated_by,
       notified, value, threshold, observed_at, details, suppressed_reason
from alerts.alert_events where alert_id = %s
"""


def _event(conn: psycopg.Connection, alert_id: uuid.UUID) -> AlertEvent:
    row = conn.execute(_EVENT, (alert_id,)).fetchone()
    if row is None:
        raise ConfigError(f"alert {alert_id} has a delivery but no event")
    (aid, rule_id, rule_type, subject, severity, fired_at, message, by, notified, value, threshold,
     observed_at, details, reason) = row  # fmt: skip
    return AlertEvent(
        alert_id=aid,
        rule_id=rule_id,
        rule_type=rule_type,
        subject=subject,
        severity=severity,
        fired_at=fired_at,
        message=message,
        evaluated_by=by,
        notified=notified,
        value=value,
        threshold=threshold,
        observed_at=observed_at,
        details=details or {},
        suppressed_reason=reason,
    )


def deliver_pending(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 200,
) -> DeliveryReport:
    """Send every due delivery once. `conn` is an autocommit connection: each claim and each
    result commits on its own, so one slow channel never holds the others' rows."""
    now = now or datetime.now(UTC)
    report = DeliveryReport()
    with conn.transaction():
        claimed = conn.execute(
            _CLAIM, {"now": now, "limit": limit, "lease_until": now + LEASE}
        ).fetchall()
    for alert_id, channel, attempts in claimed:
        try:
            send(channel, _event(conn, alert_id), settings)
        except (NotificationError, ConfigError) as exc:
            wait = retry_delay(attempts, settings)
            conn.execute(
                """
                update alerts.deliveries set next_attempt_at = %s, last_error = %s
                where alert_id = %s and channel = %s
                """,
                (now + wait, str(exc)[:1000], alert_id, channel),
            )
            report.failed.append(f"{channel} for alert {alert_id} (attempt {attempts}): {exc}")
            log.warning(
                "%s for alert %s failed (attempt %d), retrying in %s: %s",
                channel,
                alert_id,
                attempts,
                wait,
                exc,
            )
            continue
        conn.execute(
            """
            update alerts.deliveries set status = 'delivered', delivered_at = %s, last_error = null
            where alert_id = %s and channel = %s
            """,
            (now, alert_id, channel),
        )
        report.delivered.append((alert_id, channel))
    row = conn.execute("select count(*) from alerts.deliveries where status = 'pending'").fetchone()
    report.pending = int(row[0]) if row else 0
    return report
