"""
### Bronze ingestion: every source, every token, into `bronze.*` every 15 minutes

`plan_fetches` reads the watermarks and returns one request per (source, dataset, interval, group
of tokens) still missing; `fetch_to_lake` is mapped over them and keeps each response in the lake
(raw payload, Parquet, manifest); `load_bronze` is mapped over the manifests and validates,
quarantines and loads each batch in one transaction; `check_bronze_quality` checks the batches of
the run as a whole; `collect_failures` gathers what failed; `announce_bronze` emits the
**`crypto_bronze`** Asset that the silver DAG is scheduled on; `surface_failures` ends the run.
Every task calls one function of `crypto_analytics.ingestion.bronze_run`.

**Requests group tokens** that share a window (at most `ingestion.symbols_per_request`, 8 by
default), so a run is a handful of tasks rather than one per token. Inside a group each symbol is
fetched on its own: a symbol that fails is audited as failed and named in the load report, the
rest of the group lands.

**When a whole request fails** (after its retries; an unreachable host is not retried) the others
are not lost: `load_bronze` runs with `trigger_rule=all_done` over the fetches that returned a
manifest. The failure is in `bronze.ingestion_audit`, its task instance stays red, and
`collect_failures` lists it. A load that died without a word (killed, out of memory) is found
still `running` in the audit once every load has ended, and marked failed.

**What the Asset event means.** `crypto_bronze` is emitted after the quality gate and after the
run's failures were collected, when at least one new row landed: "bronze changed, and every batch
that changed it passed this run's checks". It is emitted *even if another request failed* (the
data that is there is correct; the failed part lands on a later run, its watermark not having
moved, and is announced then); its `extra` carries `batches`, `rows_inserted`, `complete` (false
when anything failed) and `failures`. No event when the quality gate fails or nothing new landed.
Whatever failed, `surface_failures` (the only leaf, `all_done`) then fails the run.

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
    def fetch_to_lake(request: dict[str, Any]) -> str | None:
        """Fetch one request into the lake; None (no XCom, so no load) when the source skips it."""
        from crypto_analytics.ingestion import bronze_run

        get_current_context()["fetch_label"] = bronze_run.describe_request(request)  # type: ignore[typeddict-unknown-key]
        return bronze_run.fetch(request)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def load_bronze(manifest_path: str) -> dict[str, Any]:
        """Validate one lake batch and load it; mapped only over the fetches that succeeded."""
        from crypto_analytics.ingestion import bronze_run

        return bronze_run.load(manifest_path)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def check_bronze_quality(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Check every batch this run loaded; raises DataQualityError listing what failed."""
        from crypto_analytics.ingestion import bronze_run

        verdict = bronze_run.check_quality(reports)
        if verdict is None:
            raise AirflowSkipException("no batch was loaded in this run: nothing to check")
        return verdict

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def collect_failures(
        reports: list[dict[str, Any]], manifests: list[str | None]
    ) -> dict[str, Any]:
        """What of this run failed (tasks, symbols, loads that died), once everything ended."""
        from crypto_analytics.ingestion import bronze_run

        ti = get_current_context()["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        return bronze_run.collect_failures(reports, manifests, states)

    @task(outlets=[BRONZE])
    def announce_bronze(quality: dict[str, Any], failures: dict[str, Any]) -> None:
        """Emit the bronze Asset with what landed and what failed, unless nothing new landed."""
        from crypto_analytics.ingestion import bronze_run

        extra = bronze_run.announcement(quality, failures)
        if extra is None:
            raise AirflowSkipException("no new rows in bronze: not announcing an update")
        get_current_context()["outlet_events"][BRONZE].extra = extra

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def surface_failures(failures: dict[str, Any] | None) -> None:
        """Fail the run when anything in it failed (after the data that landed was announced)."""
        from crypto_analytics.ingestion import bronze_run

        bronze_run.surface_failures(failures)

    planned = plan_fetches()
    manifests = fetch_to_lake.expand(request=planned)
    reports = load_bronze.expand(manifest_path=manifests)
    quality = check_bronze_quality(reports)
    failures = collect_failures(reports, manifests)
    quality >> failures
    announced = announce_bronze(quality, failures)
    ended = surface_failures(failures)
    # the only leaf decides the run's state, so it waits for every other task
    [planned, manifests, reports, quality, announced] >> ended


bronze_ingestion()
