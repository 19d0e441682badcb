"""
### Bronze ingestion: every source, every token, into `bronze.*` every 15 minutes

`plan_fetches` reads the watermarks and returns one request per (source, dataset, token,
interval) still missing; `fetch_to_lake` is mapped over them and keeps each response in the lake
(raw payload, Parquet, manifest); `load_bronze` is mapped over the manifests and validates,
quarantines and loads each batch in one transaction; `check_bronze_quality` checks the batches of
the run as a whole; `announce_bronze` emits the **`crypto_bronze`** Asset that the silver DAG is
scheduled on.

**Requests group tokens** that share a window (at most `ingestion.symbols_per_request`, 8 by
default), so a run is a handful of tasks rather than one per token. Inside a group each symbol is
fetched on its own: a symbol that fails is audited as failed and named in the load report, the
rest of the group lands, and `surface_failures` fails the run naming it.

**When a whole request fails** (after its retries) the others are not lost:
`load_bronze` runs with `trigger_rule=all_done` and Airflow expands it only over the fetches that
succeeded and returned a manifest (a failed fetch, or one that returns nothing because the source
does not list the token, pushes no XCom). The failure is written to `bronze.ingestion_audit` by the
pipeline, its task instance stays red, and `surface_failures` (the only leaf, `all_done`) lists the
failed task instances and fails, so **the run ends failed** even though everything else landed.

**Asset semantics.** `crypto_bronze` is emitted when the batches that did load passed the
quality check and at least one new row landed, *even if some other fetch failed*: the data that is
there is correct, and holding it back would let one broken source stop silver and gold from
refreshing. The event's `extra` carries the batch and row counts. No event is emitted when nothing
new landed (nothing to plan, only duplicates, or every fetch failed) or when the quality check
fails.

**Params** (all optional; leave empty for the configured defaults): `sources`
(config `ingestion.default_sources`; `["synthetic"]` runs offline), `symbols`, `intervals`,
`datasets`, and `since`/`until` (ISO-8601, UTC when no offset) to re-fetch a window instead of
continuing from the watermarks. `max_active_runs=1` keeps two runs from planning the same windows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.task.trigger_rule import TriggerRule
from crypto_assets import BRONZE

log = logging.getLogger(__name__)


def _optional_list(description: str) -> Param:
    return Param(None, type=["null", "array"], items={"type": "string"}, description=description)


def _optional_timestamp(description: str) -> Param:
    return Param(None, type=["null", "string"], description=description)


def _param_time(params: dict[str, Any], name: str) -> datetime | None:
    """An ISO-8601 param as an aware UTC datetime (naive means UTC); a clear error otherwise."""
    value = params.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"param {name!r} must be an ISO-8601 time, got {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dag(
    # Mirrors config/config.yaml `schedules.bronze_ingestion`; a literal because reading the YAML
    # would be file I/O at parse time (tests/dags checks the two agree).
    schedule="*/15 * * * *",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    doc_md=__doc__,
    tags=["bronze", "ingestion"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
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
        from crypto_analytics.ingestion.pipeline import plan_requests

        params = params or {}
        requests = plan_requests(
            sources=params.get("sources") or None,
            symbols=params.get("symbols") or None,
            intervals=params.get("intervals") or None,
            datasets=params.get("datasets") or None,
            since=_param_time(params, "since"),
            until=_param_time(params, "until"),
        )
        return [request.to_dict() for request in requests]

    @task(map_index_template="{{ fetch_label }}")
    def fetch_to_lake(request: dict[str, Any]) -> str | None:
        """Fetch one request into the lake; None (no XCom, so no load) when the source skips it."""
        from crypto_analytics.ingestion.pipeline import FetchRequest
        from crypto_analytics.ingestion.pipeline import fetch_to_lake as fetch

        get_current_context()["fetch_label"] = FetchRequest.from_dict(request).describe()  # type: ignore[typeddict-unknown-key]
        return fetch(request)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def load_bronze(manifest_path: str) -> dict[str, Any]:
        """Validate one lake batch and load it; mapped only over the fetches that succeeded."""
        from crypto_analytics.ingestion.pipeline import load_from_lake

        return load_from_lake(manifest_path)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def check_bronze_quality(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Check every batch this run loaded; raises DataQualityError listing what failed."""
        from crypto_analytics.quality import check_bronze

        loaded = list(reports)
        if not loaded:
            raise AirflowSkipException("no batch was loaded in this run: nothing to check")
        return check_bronze(loaded)

    @task(outlets=[BRONZE])
    def announce_bronze(summary: dict[str, Any]) -> None:
        """Emit the bronze Asset, unless no new row landed (then silver has nothing to do)."""
        if not summary["rows_inserted"]:
            raise AirflowSkipException("no new rows in bronze: not announcing an update")
        outlet_events = get_current_context()["outlet_events"]
        outlet_events[BRONZE].extra = {
            "batches": summary["batches"],
            "rows_inserted": summary["rows_inserted"],
        }
        log.info("announcing %d new bronze rows", summary["rows_inserted"])

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def surface_failures(reports: list[dict[str, Any]]) -> None:
        """Fail the run when any task, or any symbol inside a grouped fetch, failed, after
        everything else had its chance to finish."""
        context = get_current_context()
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        failed = sorted(
            name
            for name, state in states.items()
            if state in ("failed", "upstream_failed") and name != ti.task_id
        )
        symbols = sorted(
            f"{report['source_api']} {failure['symbol']} ({failure['error']})"
            for report in reports or []
            for failure in report.get("fetch_failures", [])
        )
        problems = []
        if failed:
            problems.append(f"{len(failed)} task instance(s) failed: {', '.join(failed)}")
        if symbols:
            problems.append(f"{len(symbols)} symbol(s) could not be fetched: {'; '.join(symbols)}")
        if problems:
            raise RuntimeError(
                "; ".join(problems) + ". The data of every other request landed; failed "
                "fetches are in bronze.ingestion_audit (status = 'failed')."
            )
        log.info("every task of the run succeeded or was skipped")

    planned = plan_fetches()
    manifests = fetch_to_lake.expand(request=planned)
    reports = load_bronze.expand(manifest_path=manifests)
    summary = check_bronze_quality(reports)
    announced = announce_bronze(summary)
    [planned, manifests, summary, announced] >> surface_failures(reports)


bronze_ingestion()
