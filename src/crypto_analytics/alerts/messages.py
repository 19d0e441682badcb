"""What an alert says on each channel: an e-mail and a webhook payload built from one episode."""

from __future__ import annotations

from typing import Any

from crypto_analytics.alerts.observations import format_number
from crypto_analytics.alerts.state import AlertEvent
from crypto_analytics.notifications.webhook import slack_payload

_SEVERITY_MARK = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


def title(event: AlertEvent) -> str:
    return f"{event.severity.upper()} {event.rule_id}: {event.subject}"


def _facts(event: AlertEvent) -> list[tuple[str, str]]:
    facts = [
        ("Rule", f"{event.rule_id} ({event.rule_type})"),
        ("Subject", event.subject),
        ("Value", format_number(event.value)),
        ("Threshold", format_number(event.threshold)),
        ("Data as of", f"{event.observed_at:%Y-%m-%d %H:%M} UTC" if event.observed_at else "n/a"),
        ("Fired at", f"{event.fired_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("Evaluated by", event.evaluated_by),
    ]
    return facts


def email_subject(event: AlertEvent) -> str:
    return f"[crypto-analytics] {title(event)} - {event.message}"[:250]


def email_text(event: AlertEvent) -> str:
    lines = [event.message, ""]
    lines += [f"{name}: {value}" for name, value in _facts(event)]
    lines += [
        f"Alert id: {event.alert_id}",
        "",
        "History and state: gold.alerts and gold.alert_rule_state (the dashboard's Alerts page).",
        "This episode is notified once; it resolves when the rule stops firing.",
    ]
    return "\n".join(lines)


def webhook_payload(event: AlertEvent, fmt: str) -> dict[str, Any]:
    """`slack`: Block Kit {"text", "blocks"}; `json`: {"text", "alert"} with every field."""
    mark = _SEVERITY_MARK.get(event.severity, "")
    text = f"{mark} {event.message}".strip()
    if fmt == "slack":
        return slack_payload(
            title(event), text, _facts(event), context=f"alert {event.alert_id} · gold.alerts"
        )
    return {
        "text": f"{title(event)}: {event.message}",
        "alert": {
            "alert_id": str(event.alert_id),
            "rule_id": event.rule_id,
            "rule_type": event.rule_type,
            "subject": event.subject,
            "severity": event.severity,
            "message": event.message,
            "value": event.value,
            "threshold": event.threshold,
            "observed_at": event.observed_at.isoformat() if event.observed_at else None,
            "fired_at": event.fired_at.isoformat(),
            "evaluated_by": event.evaluated_by,
            "details": dict(event.details),
        },
    }
