"""The alert engine's entry points for the Airflow DAG and the CLI: evaluate on gold, deliver.

Each call opens its own connection and returns a JSON-safe report, so an Airflow task is one line
and the CLI prints the same facts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crypto_analytics.alerts.delivery import DeliveryReport, available_channels, deliver_pending
from crypto_analytics.alerts.engine import evaluate_on_gold
from crypto_analytics.alerts.rules import load_rules
from crypto_analytics.alerts.state import record_observations, retire_rules
from crypto_analytics.config import Settings, get_settings
from crypto_analytics.warehouse import connect, database_url

log = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    """One pass over the rules: current verdicts and what changed."""

    rules: int = 0
    firing: list[str] = field(default_factory=list)
    no_data: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stream_only: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    ignored_older: int = 0
    delivery: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": self.rules,
            "firing": self.firing,
            "no_data": self.no_data,
            "errors": self.errors,
            "stream_only": self.stream_only,
            "opened": self.opened,
            "suppressed": self.suppressed,
            "resolved": self.resolved,
            "ignored_older": self.ignored_older,
            "delivery": self.delivery,
        }


def evaluate_rules(
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
    evaluated_by: str = "airflow",
    deliver: bool = False,
) -> EvaluationReport:
    """Evaluate every enabled rule on gold, record episodes (one transaction), close the episodes
    of rules removed from the file, and optionally deliver what is due."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    ruleset = load_rules(settings)
    with connect(database_url(settings), autocommit=True) as conn:
        evaluation = evaluate_on_gold(conn, ruleset, settings, now)
        recorded = record_observations(
            conn,
            evaluation.observations,
            {rule.id: rule for rule in ruleset.rules},
            now=now,
            evaluated_by=evaluated_by,
            available_channels=available_channels(settings),
        )
        retire_rules(conn, [rule.id for rule in ruleset.enabled], now)
        delivery = deliver_pending(conn, settings, now=now) if deliver else None

    def line(rule_id: str, subject: str, message: str) -> str:
        return f"{rule_id} [{subject}]: {message}"

    report = EvaluationReport(
        rules=len(ruleset.enabled),
        stream_only=evaluation.stream_only,
        ignored_older=recorded.ignored_older,
        delivery=delivery.to_dict() if delivery else None,
    )
    for obs in evaluation.observations:
        text = line(obs.rule_id, obs.subject, obs.message)
        if obs.status == "firing":
            report.firing.append(text)
        elif obs.status == "no_data":
            report.no_data.append(text)
        elif obs.status == "error":
            report.errors.append(text)
    for event in recorded.opened:
        text = line(event.rule_id, event.subject, event.message)
        (report.opened if event.notified else report.suppressed).append(
            text if event.notified else f"{text} ({event.suppressed_reason})"
        )
    report.resolved = [f"{rule_id} [{subject}]" for rule_id, subject in recorded.resolved]
    log.info(
        "alerts: %d rules, %d firing, %d opened, %d resolved, %d no data, %d errors",
        report.rules,
        len(report.firing),
        len(report.opened) + len(report.suppressed),
        len(report.resolved),
        len(report.no_data),
        len(report.errors),
    )
    return report


def deliver_notifications(
    settings: Settings | None = None, *, now: datetime | None = None
) -> DeliveryReport:
    """Send every due notification of the outbox once (failed ones stay for a later try)."""
    settings = settings or get_settings()
    with connect(database_url(settings), autocommit=True) as conn:
        return deliver_pending(conn, settings, now=now)
