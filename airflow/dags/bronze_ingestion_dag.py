"""
### Bronze ingestion: every source, every token, into `bronze.*` every 15 minutes

`plan_fetches` reads the watermarks and returns one request per (source, dataset, interval, group
of tokens) still missing; `ingest_batch` is mapped over them: it keeps each response in the lake
(raw payload, Parquet, manifest), then validates, quarantines and loads the batch in one
transaction; `check_and_announce` checks the batches of the run as a whole, gathers what failed
and emits the **`crypto_bronze`** Asset that the silver DAG is scheduled on; `surface_failures`
ends the run. Every task calls one function of `crypto_analytics.ingestion.bronze_run`.

**Few task instances, on purpose.** Each costs seconds of scheduling and start-up on a 2-core
machine, and the Asset event is what the next layer waits for: a run is plan, one task per
request, the check, and the leaf. Fetch and load share a task (a retry fetches again;
`crypto-analytics replay` loads what the lake holds without fetching).

**Requests group tokens** that share a window (at most `ingestion.symbols_per_request`, 20 by
default), so a run is a handful of tasks rather than one per token. Inside a group each symbol is
fetched on its own: a symbol that fails is audited as failed and named in the load report, the
rest of the group lands.

**When a whole request fails** (after its retries; an unreachable host is not retried) the others
are not lost: `check_and_announce` runs with `trigger_rule=all_done` over the requests that
landed. The failure is in `bronze.ingestion_audit`, its task instance stays red, and the run's
failures list it. A load that died without a word (killed, out of memory) is found still
`running` in the audit once every task has ended (its manifest was recorded before the load
started), and marked failed.

**What the Asset event means.** `crypto_bronze` is emitted after the quality gate and after the
run's failures were collected, when at least one new row landed: "bronze changed, and every batch
that changed it passed this run's checks". It is emitted *even if another request failed* (the
data that is there is correct; the failed part lands on a later run, its watermark not having
moved, and is announced then); its `extra` carries `batches`, `rows_inserted`, `complete` (false
when anything failed) and `failures`. No event when the quality gate fails (`check_and_announce`
fails) or nothing new landed (it is skipped). Whatever failed, `surface_failures` (the only leaf,
`all_done`) then fails the run, naming it.

**Params** (all optional; leave empty for the configured defaults): `sources`
(config `ingestion.default_sources`; `["synthetic"]` runs offline), `symbols`, `intervals`,
`datasets`, and `since`/`until` (ISO-8601, UTC when no offset) to re-fetch a window instead of
continuing from the watermarks. `max_active_runs=1` keeps two runs from planning the same windows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.task.trigger_rule import TriggerRule
from crypto_assets import BRONZE

from crypto_analytics.contract import (
    BRONZE_DAG_ID,
    BRONZE_SCHEDULE,
    DAG_START_DATE,
    DAG_TAGS,
    DEFAULT_TASK_ARGS,
    MAX_ACTIVE_FETCHES,
)

#: XCom keys: a fetch's manifest (pushed before its load, so a load that dies is still found) and
#: the run's failures (pushed before the gate can fail, so surface_failures always has them).
MANIFEST = "manifest"
FAILURES = "failures"


def _optional_list(description: str) -> Param:
    return Param(None, type=["null", "array"], items={"type": "string"}, description=description)


def _optional_timestamp(description: str) -> Param:
    return Param(None, type=["null", "string"], description=description)


@dag(
    dag_id=BRONZE_DAG_ID,
    schedule=BRONZE_SCHEDULE,
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    tags=DAG_TAGS[BRONZE_DAG_ID],
    # a failed fetch waits a little longer than the default before its retry: rate limits
    default_args={**DEFAULT_TASK_ARGS, "retry_delay": timedelta(minutes=2)},
    params={
        "sources": _optional_list("Sources to fetch; empty = ingestion.default_sources"),
        "symbols": _optional_list("Token symbols; empty = the whole universe"),
        "intervals": _optional_list("Candle intervals; empty = each source's configured ones"),
        "datasets": _optional_list("ohlcv, market, orderbook; empty = all a source serves"),
        "since": _optional_timestamp("Re-fetch from this ISO-8601 time instead of watermarks"),
        "until": _optional_timestamp("Fetch up to this ISO-8601 time (default: now)"),
    },
)
def bronze_ingestion() -> None:
    @task
    def plan_fetches(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Turn the run's params and the watermarks into JSON-safe fetch requests."""
        from crypto_analytics.ingestion import bronze_run

        return bronze_run.plan_fetches(params)

    @task(map_index_template="{{ fetch_label }}", max_active_tis_per_dagrun=MAX_ACTIVE_FETCHES)
    def ingest_batch(request: dict[str, Any]) -> dict[str, Any]:
        """Fetch one request into the lake, then validate and load it in one transaction."""
        from crypto_analytics.ingestion import bronze_run

        context = get_current_context()
        context["fetch_label"] = bronze_run.describe_request(request)  # type: ignore[typeddict-unknown-key]
        ti = context["ti"]
        report = bronze_run.ingest(request, lambda path: ti.xcom_push(key=MANIFEST, value=path))
        if report is None:
            raise AirflowSkipException("the source skips this request: see the log for why")
        return report

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0, outlets=[BRONZE])
    def check_and_announce(reports: list[dict[str, Any]]) -> None:
        """Check every batch this run loaded and collect what failed; then emit the bronze
        Asset with both, unless the gate failed (this task fails) or nothing new landed."""
        from crypto_analytics.ingestion import bronze_run

        context = get_current_context()
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        extra = bronze_run.check_and_announce(
            reports,
            ti.xcom_pull(task_ids="ingest_batch", key=MANIFEST),
            states,
            lambda failures: ti.xcom_push(key=FAILURES, value=failures),
        )
        if extra is None:
            raise AirflowSkipException("no new rows in bronze: not announcing an update")
        context["outlet_events"][BRONZE].extra = extra

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def surface_failures() -> None:
        """Fail the run when anything in it failed (after the data that landed was announced)."""
        from crypto_analytics.ingestion import bronze_run

        ti = get_current_context()["ti"]
        bronze_run.surface_failures(ti.xcom_pull(task_ids="check_and_announce", key=FAILURES))

    planned = plan_fetches()
    reports = ingest_batch.expand(request=planned)
    announced = check_and_announce(reports)
    # the only leaf decides the run's state, so it waits for every other task
    [planned, reports, announced] >> surface_failures()


bronze_ingestion()
