"""Observations to episodes: state per (rule, subject), cooldown, de-duplication and the outbox.

Why the rules live in the database and not in memory: the Airflow task, the stream and the CLI
evaluate the same rules in different processes. One transaction per pass, serialised by an
advisory lock, reads each (rule, subject) state and decides:

- ok -> firing opens an episode (an `alerts.alert_events` row). It is notified unless the last
  notification for that (rule, subject) is within the rule's cooldown (then it is recorded with
  `suppressed_reason`), and a notified episode gets one outbox row per channel in the same
  transaction, so a crash can lose neither the alert nor its pending notifications;
- firing -> firing updates the open episode's state only: one episode fires once (a unique index
  also allows one open episode per (rule, subject));
- firing -> ok closes the episode (`resolved_at`);
- an observation older than the state's (gold's daily close after the stream's last minute) is
  ignored, so two evaluators with different data never flip a state back and forth.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crypto_analytics.alerts.observations import WHOLE_RULE, Observation
from crypto_analytics.alerts.rules import Rule

log = logging.getLogger(__name__)

#: Serialises recording passes (the stream every minute, Airflow after each gold build).
_ALERTS_LOCK_KEY = 0x414C45525453  # "ALERTS"


@dataclass(frozen=True)
class AlertEvent:
    """An episode as opened: what the notifications carry."""

    alert_id: uuid.UUID
    rule_id: str
    rule_type: str
    subject: str
    severity: str
    fired_at: datetime
    message: str
    evaluated_by: str
    notified: bool
    value: float | None = None
    threshold: float | None = None
    observed_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    suppressed_reason: str | None = None
    channels: tuple[str, ...] = ()


@dataclass
class RecordResult:
    """What one pass changed."""

    opened: list[AlertEvent] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)
    ignored_older: int = 0

    @property
    def notified(self) -> list[AlertEvent]:
        return [e for e in self.opened if e.notified]


@dataclass(frozen=True)
class _State:
    status: str
    observed_at: datetime | None
    open_alert_id: uuid.UUID | None
    last_notified_at: datetime | None


def _load_states(
    conn: psycopg.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], _State]:
    """The current state of every (rule, subject) of a pass, in one query (the pass holds the
    alerts lock, so nobody changes them meanwhile)."""
    rows = conn.execute(
        """
        select s.rule_id, s.subject, s.status, s.observed_at, s.open_alert_id, s.last_notified_at
        from alerts.rule_state s
        join unnest(%s::text[], %s::text[]) as k(rule_id, subject)
          on k.rule_id = s.rule_id and k.subject = s.subject
        """,
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return {(r[0], r[1]): _State(*r[2:]) for r in rows}


def _upsert_state(
    conn: psycopg.Connection,
    obs: Observation,
    *,
    status: str,
    changed: bool,
    now: datetime,
    evaluated_by: str,
    open_alert_id: uuid.UUID | None,
    last_notified_at: datetime | None,
) -> None:
    conn.execute(
        """
        insert into alerts.rule_state as s (rule_id, subject, rule_type, status, since,
            evaluated_at, observed_at, value, threshold, message, evaluated_by, open_alert_id,
            last_notified_at)
        values (%(rule_id)s, %(subject)s, %(rule_type)s, %(status)s, %(now)s, %(now)s,
            %(observed_at)s, %(value)s, %(threshold)s, %(message)s, %(by)s, %(open)s, %(notified)s)
        on conflict (rule_id, subject) do update set
            rule_type = excluded.rule_type,
            status = excluded.status,
            since = case when %(changed)s then excluded.since else s.since end,
            evaluated_at = excluded.evaluated_at,
            observed_at = coalesce(excluded.observed_at, s.observed_at),
            value = excluded.value,
            threshold = excluded.threshold,
            message = excluded.message,
            evaluated_by = excluded.evaluated_by,
            open_alert_id = excluded.open_alert_id,
            last_notified_at = excluded.last_notified_at
        """,
        {
            "rule_id": obs.rule_id,
            "subject": obs.subject,
            "rule_type": obs.rule_type,
            "status": status,
            "now": now,
            "observed_at": obs.observed_at,
            "value": obs.value,
            "threshold": obs.threshold,
            "message": obs.message,
            "by": evaluated_by,
            "open": open_alert_id,
            "notified": last_notified_at,
            "changed": changed,
        },
    )


def _open_episode(
    conn: psycopg.Connection,
    obs: Observation,
    rule: Rule,
    previous: _State | None,
    *,
    now: datetime,
    evaluated_by: str,
    available_channels: set[str],
) -> AlertEvent:
    last = previous.last_notified_at if previous else None
    in_cooldown = last is not None and now - last < rule.cooldown
    channels = tuple(c for c in rule.channels if c in available_channels)
    if in_cooldown:
        assert last is not None
        reason: str | None = f"cooldown: last notified {last:%Y-%m-%d %H:%M} UTC"
    elif not channels:
        reason = "no channel configured (set notifications.smtp or ALERT_WEBHOOK_URL)"
    else:
        reason = None
    event = AlertEvent(
        alert_id=uuid.uuid4(),
        rule_id=obs.rule_id,
        rule_type=obs.rule_type,
        subject=obs.subject,
        severity=rule.severity,
        fired_at=now,
        message=obs.message,
        evaluated_by=evaluated_by,
        notified=reason is None,
        value=obs.value,
        threshold=obs.threshold,
        observed_at=obs.observed_at,
        details=dict(obs.details),
        suppressed_reason=reason,
        channels=channels if reason is None else (),
    )
    conn.execute(
        """
        insert into alerts.alert_events (alert_id, rule_id, rule_type, subject, severity,
            fired_at, observed_at, value, threshold, message, details, evaluated_by, notified,
            suppressed_reason)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            event.alert_id,
            event.rule_id,
            event.rule_type,
            event.subject,
            event.severity,
            event.fired_at,
            event.observed_at,
            event.value,
            event.threshold,
            event.message,
            Jsonb(event.details),
            event.evaluated_by,
            event.notified,
            event.suppressed_reason,
        ),
    )
    for channel in event.channels:
        conn.execute(
            """
            insert into alerts.deliveries (alert_id, channel, created_at, next_attempt_at)
            values (%s, %s, %s, %s)
            """,
            (event.alert_id, channel, now, now),
        )
    return event


def _resolve(
    conn: psycopg.Connection, alert_id: uuid.UUID, obs: Observation, now: datetime
) -> None:
    conn.execute(
        """
        update alerts.alert_events
        set resolved_at = greatest(%s, fired_at), resolved_value = %s, resolution = %s
        where alert_id = %s and resolved_at is null
        """,
        (now, obs.value, obs.message, alert_id),
    )


def _apply(
    conn: psycopg.Connection,
    obs: Observation,
    rule: Rule,
    previous: _State | None,
    result: RecordResult,
    *,
    now: datetime,
    evaluated_by: str,
    available_channels: set[str],
) -> None:
    was_firing = previous is not None and previous.status == "firing"
    open_id = previous.open_alert_id if previous else None
    last_notified = previous.last_notified_at if previous else None

    if obs.status in ("no_data", "error"):
        # Missing data is not a resolution: a firing episode stays open, with the note.
        status = "firing" if was_firing else obs.status
        changed = previous is None or previous.status != status
        _upsert_state(
            conn,
            obs,
            status=status,
            changed=changed,
            now=now,
            evaluated_by=evaluated_by,
            open_alert_id=open_id,
            last_notified_at=last_notified,
        )
        return

    if (
        previous is not None
        and previous.observed_at is not None
        and obs.observed_at is not None
        and obs.observed_at < previous.observed_at
    ):
        result.ignored_older += 1
        return

    if obs.firing and not was_firing:
        event = _open_episode(
            conn,
            obs,
            rule,
            previous,
            now=now,
            evaluated_by=evaluated_by,
            available_channels=available_channels,
        )
        result.opened.append(event)
        open_id = event.alert_id
        last_notified = now if event.notified else last_notified
        log.warning(
            "alert %s %s: %s%s",
            obs.rule_id,
            obs.subject,
            obs.message,
            "" if event.notified else f" (not sent: {event.suppressed_reason})",
        )
    elif not obs.firing and was_firing:
        if open_id is not None:
            _resolve(conn, open_id, obs, now)
        result.resolved.append((obs.rule_id, obs.subject))
        open_id = None
        log.info("alert %s %s resolved: %s", obs.rule_id, obs.subject, obs.message)
    _upsert_state(
        conn,
        obs,
        status=obs.status,
        changed=previous is None or previous.status != obs.status,
        now=now,
        evaluated_by=evaluated_by,
        open_alert_id=open_id,
        last_notified_at=last_notified,
    )


def record_observations(
    conn: psycopg.Connection,
    observations: Sequence[Observation],
    rules: Mapping[str, Rule],
    *,
    now: datetime,
    evaluated_by: str,
    available_channels: Iterable[str],
) -> RecordResult:
    """Apply one pass of observations in one transaction; returns the episodes opened/closed."""
    channels = set(available_channels)
    result = RecordResult()
    ordered = sorted(observations, key=lambda o: (o.rule_id, o.subject))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_ALERTS_LOCK_KEY,))
        states = _load_states(conn, [(o.rule_id, o.subject) for o in ordered])
        for obs in ordered:
            _apply(
                conn,
                obs,
                rules[obs.rule_id],
                states.get((obs.rule_id, obs.subject)),
                result,
                now=now,
                evaluated_by=evaluated_by,
                available_channels=channels,
            )
        # A rule that now judges its subjects no longer needs its whole-rule "no data" row.
        judged = sorted({o.rule_id for o in ordered if o.subject != WHOLE_RULE})
        if judged:
            conn.execute(
                """
                delete from alerts.rule_state
                where subject = %s and rule_id = any(%s) and status in ('no_data', 'error')
                """,
                (WHOLE_RULE, judged),
            )
    return result


def retire_rules(conn: psycopg.Connection, active_rule_ids: Iterable[str], now: datetime) -> int:
    """Close the open episodes and drop the state of rules no longer enabled in the rules file;
    returns how many episodes were closed. History stays in alerts.alert_events."""
    active = sorted(set(active_rule_ids))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_ALERTS_LOCK_KEY,))
        closed = conn.execute(
            """
            update alerts.alert_events
            set resolved_at = greatest(%s, fired_at),
                resolution = 'rule removed or disabled in the rules file'
            where resolved_at is null and not (rule_id = any(%s))
            """,
            (now, active),
        ).rowcount
        conn.execute("delete from alerts.rule_state where not (rule_id = any(%s))", (active,))
    if closed:
        log.info("closed %d episode(s) of rules no longer in the rules file", closed)
    return closed
