"""
### Alert evaluation: every rule of `config/alerts.yaml` on gold, then the notifications

Scheduled on the **`crypto_gold`** or **`crypto_price_predictions`** Asset (after every gold build,
and after every forecast refresh with its model-drift check) **or** every 30 minutes, whichever
comes first (an `AssetOrTimeSchedule`): the clock is what notices stale data when nothing upstream
runs any more.

1. `evaluate_alert_rules` judges every enabled rule on gold (prices, moves of whole days,
   volatility spikes, portfolio drift, model drift, stale candles and the stream's heartbeat) and
   records what changed in one transaction: new episodes (with their notifications queued in the
   outbox, unless the rule's cooldown mutes them), resolutions, and the state of every rule and
   subject. A rule whose input does not exist yet is "no data: run X"; a rule that fails is
   recorded as an error, the others go on, and the task fails at the end so the error is seen.
   Price moves under a day are measured by the stream (`crypto-analytics stream`), not here.
2. `deliver_alert_notifications` (runs whatever the first task did) sends every due notification
   by e-mail and webhook. A channel that fails keeps its row in the outbox for a later try (this
   task's retries, the next run, or the stream) and fails the task so it shows; so does a failed
   evaluation, after what it recorded was delivered, so the run is red either way.

3. `build_alert_views` (beside the delivery, whatever the evaluation did) builds and tests gold's
   alert and stream views with dbt (`crypto_analytics.dbt_runner.build_result_views`), so their
   data tests run whenever their data changes; the 15-minute gold build leaves them out.

History and state: `gold.alerts`, `gold.alert_rule_state` (the dashboard's Alerts page).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task
from crypto_assets import GOLD, PREDICTIONS

from crypto_analytics.contract import (
    ALERT_VIEWS,
    ALERTS_SCHEDULE,
    DAG_START_DATE,
    DEFAULT_TASK_ARGS,
)

log = logging.getLogger(__name__)


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(ALERTS_SCHEDULE, timezone="UTC"),
        assets=(GOLD | PREDICTIONS),
    ),
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=15),
    doc_md=__doc__,
    tags=["alerts", "gold"],
    default_args=DEFAULT_TASK_ARGS,
)
def alert_evaluation() -> None:
    @task
    def evaluate_alert_rules() -> dict[str, Any]:
        """Judge every rule on gold and record the episodes; fail after recording if a rule failed."""
        from crypto_analytics.alerts.service import evaluate_rules
        from crypto_analytics.errors import CryptoAnalyticsError

        report = evaluate_rules(evaluated_by="airflow")
        for line in report.opened:
            log.warning("new alert: %s", line)
        for line in report.no_data:
            log.info("no data: %s", line)
        if report.errors:
            raise CryptoAnalyticsError(
                f"{len(report.errors)} rule(s) failed (the others were evaluated): "
                + "; ".join(report.errors)
            )
        return report.to_dict()

    @task(trigger_rule="all_done")
    def deliver_alert_notifications() -> dict[str, Any]:
        """Send what is due; fail when a channel failed (it stays queued) or when the evaluation
        failed (so the run is red, though whatever it recorded was still delivered)."""
        from crypto_analytics.alerts.service import deliver_notifications
        from crypto_analytics.errors import CryptoAnalyticsError, NotificationError

        report = deliver_notifications()
        if report.failed:
            raise NotificationError(
                f"{len(report.failed)} notification(s) failed and stay queued for retry: "
                + "; ".join(report.failed)
            )
        evaluated = get_current_context()["ti"].xcom_pull(task_ids="evaluate_alert_rules")
        if evaluated is None:
            raise CryptoAnalyticsError(
                f"alert evaluation failed (see evaluate_alert_rules); {len(report.delivered)} "
                "notification(s) of what it recorded were delivered"
            )
        return report.to_dict()

    @task(trigger_rule="all_done")
    def build_alert_views() -> dict[str, Any]:
        """Build and test gold's alert and stream views over what the evaluation recorded (also
        after a rule failed: what it recorded is still new data)."""
        from dataclasses import asdict

        from crypto_analytics.dbt_runner import build_result_views

        return asdict(build_result_views(ALERT_VIEWS))

    evaluated = evaluate_alert_rules()
    evaluated >> [deliver_alert_notifications(), build_alert_views()]


alert_evaluation()
