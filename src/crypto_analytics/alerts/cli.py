"""`crypto-analytics alerts rules|evaluate|deliver|history|test`: the alert engine by hand.

Mounted in crypto_analytics.cli; nothing heavy is imported until a command runs. Platform errors
become one red `error: ...` line and exit 1 (crypto_analytics.cli.OneLineErrors).
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="Alert rules (config/alerts.yaml): check them, evaluate them on gold, deliver and list "
    "notifications.",
)


@app.command("rules")
def rules_command() -> None:
    """Check the rules file and list its rules."""
    from crypto_analytics.alerts.rules import PriceMoveRule, format_duration, load_rules, rules_path
    from crypto_analytics.config import get_settings

    settings = get_settings()
    ruleset = load_rules(settings)
    typer.echo(
        f"{rules_path(settings)}: {len(ruleset.rules)} rules, {len(ruleset.enabled)} enabled"
    )
    for rule in ruleset.rules:
        where = "stream" if isinstance(rule, PriceMoveRule) and rule.on_stream else "gold"
        if rule.type == "price_threshold":
            where = "gold + stream"
        flag = "" if rule.enabled else " (disabled)"
        typer.echo(
            f"  {rule.id:<28} {rule.type:<17} {rule.severity:<8} cooldown "
            f"{format_duration(rule.cooldown):<4} {','.join(rule.channels):<14} on {where}{flag}"
        )


@app.command("evaluate")
def evaluate_command(
    deliver: Annotated[
        bool, typer.Option("--deliver/--no-deliver", help="Send due notifications afterwards.")
    ] = True,
) -> None:
    """Evaluate every rule on gold now, record episodes, and (by default) send notifications."""
    from crypto_analytics.alerts.service import evaluate_rules

    report = evaluate_rules(evaluated_by="cli", deliver=deliver)
    typer.echo(
        f"{report.rules} rules: {len(report.firing)} firing, {len(report.no_data)} without data, "
        f"{len(report.errors)} failed"
    )
    for title, lines in (
        ("new alerts", report.opened),
        ("recorded, not sent", report.suppressed),
        ("resolved", report.resolved),
        ("firing", report.firing),
        ("no data", report.no_data),
        ("measured by the stream", report.stream_only),
    ):
        if lines:
            typer.echo(f"{title}:")
            for line in lines:
                typer.echo(f"  {line}")
    if report.delivery is not None:
        typer.echo(
            f"notifications: {report.delivery['delivered']} sent, "
            f"{len(report.delivery['failed'])} failed (kept for retry), "
            f"{report.delivery['pending']} pending"
        )
    for line in report.errors:
        typer.secho(f"failed: {line}", fg=typer.colors.RED, err=True)
    if report.errors:
        raise typer.Exit(code=1)


@app.command("deliver")
def deliver_command() -> None:
    """Send every due notification once; failed ones stay in the outbox for a later try."""
    from crypto_analytics.alerts.service import deliver_notifications

    report = deliver_notifications()
    typer.echo(
        f"{len(report.delivered)} sent, {len(report.failed)} failed, {report.pending} pending"
    )
    for line in report.failed:
        typer.secho(f"failed: {line}", fg=typer.colors.RED, err=True)
    if report.failed:
        raise typer.Exit(code=1)


@app.command("history")
def history_command(
    limit: Annotated[int, typer.Option(min=1, help="How many episodes, newest first.")] = 20,
    rule: Annotated[str | None, typer.Option(help="Only this rule id.")] = None,
) -> None:
    """The newest alert episodes with their delivery state."""
    from crypto_analytics.warehouse import connect

    with connect() as conn:
        rows = conn.execute(
            """
            select e.fired_at, e.rule_id, e.subject, e.severity, e.message, e.resolved_at,
                   e.notified, e.suppressed_reason,
                   string_agg(d.channel || '=' || d.status, ' ' order by d.channel)
            from alerts.alert_events e
            left join alerts.deliveries d using (alert_id)
            where %(rule)s::text is null or e.rule_id = %(rule)s
            group by e.alert_id
            order by e.fired_at desc
            limit %(limit)s
            """,
            {"rule": rule, "limit": limit},
        ).fetchall()
    if not rows:
        typer.echo("no alerts recorded yet")
    for fired, rule_id, subject, severity, message, resolved, notified, reason, deliveries in rows:
        state = f"resolved {resolved:%m-%d %H:%M}" if resolved else "FIRING"
        sent = deliveries or ("not sent: " + (reason or "") if not notified else "")
        typer.echo(
            f"{fired:%Y-%m-%d %H:%M} {severity:<8} {rule_id} [{subject}] {state}: {message}  ({sent})"
        )


@app.command("test")
def test_command(
    channel: Annotated[
        list[str] | None,
        typer.Option(help="email or webhook (repeatable); default: every configured one."),
    ] = None,
) -> None:
    """Send a test notification to the configured channels (nothing is recorded)."""
    import uuid
    from datetime import UTC, datetime

    from crypto_analytics.alerts.delivery import available_channels, send
    from crypto_analytics.alerts.state import AlertEvent
    from crypto_analytics.config import get_settings
    from crypto_analytics.errors import ConfigError

    settings = get_settings()
    configured = available_channels(settings)
    wanted = channel or sorted(configured)
    for name in wanted:
        if name not in ("email", "webhook"):
            raise ConfigError(f"unknown channel {name!r}; choose from: email, webhook")
    if not wanted:
        raise ConfigError(
            "no channel configured: set notifications.smtp (host, recipients) and/or ALERT_WEBHOOK_URL"
        )
    event = AlertEvent(
        alert_id=uuid.uuid4(),
        rule_id="test",
        rule_type="test",
        subject="channels",
        severity="info",
        fired_at=datetime.now(UTC),
        message="test notification from crypto-analytics: this channel works",
        evaluated_by="cli",
        notified=True,
    )
    for name in wanted:
        send(name, event, settings)
        typer.echo(f"{name}: sent")
