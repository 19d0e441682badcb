"""The bronze DAG's steps as package functions, so `airflow/dags/bronze_ingestion_dag.py` only wires.

Each function is what one task does; its arguments and results are the JSON forms of the typed
records in `reports` (Airflow's XCom carries JSON), converted back to those records here and
nowhere else.

What the run announces (the `crypto_bronze` Asset event, emitted by `check_and_announce`):
"bronze changed, and every batch that changed it passed this run's quality gate". It is emitted
after the gate and after the run's failures were collected, when at least one new row landed,
even if another request failed: the data that is there is correct, silver and gold recompute
incrementally and idempotently, and the failed part lands on a later run (its watermark did not
move) and is announced then. The event's `extra` says whether the run was `complete` and lists
what failed, so a consumer can tell. No event when the gate fails or nothing new landed. The
run itself still ends failed when anything failed (`surface_failures`, the only leaf).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from crypto_analytics.errors import CryptoAnalyticsError, DataQualityError
from crypto_analytics.ingestion import audit, lake
from crypto_analytics.ingestion.pipeline import (
    FetchRequest,
    fetch_to_lake,
    load_from_lake,
    plan,
)
from crypto_analytics.ingestion.reports import BatchReport, QualityReport, RunFailures
from crypto_analytics.utc import parse_utc

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The run's parameters (all optional): see the DAG's params.
PARAMS = ("sources", "symbols", "intervals", "datasets", "since", "until")
#: Task states that mean a task did not succeed.
FAILED_STATES = frozenset({"failed", "upstream_failed"})


class BronzeRunFailed(CryptoAnalyticsError):
    """Part of a bronze run failed; everything else it fetched landed and was checked."""


def plan_fetches(params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The run's params and the watermarks as JSON fetch requests; skips are logged with why."""
    params = params or {}
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise CryptoAnalyticsError(
            f"unknown param(s) {', '.join(unknown)}; the DAG takes: {', '.join(PARAMS)}"
        )
    since, until = params.get("since"), params.get("until")
    planned = plan(
        sources=params.get("sources") or None,
        symbols=params.get("symbols") or None,
        intervals=params.get("intervals") or None,
        datasets=params.get("datasets") or None,
        since=parse_utc(since, "param since") if since else None,
        until=parse_utc(until, "param until") if until else None,
    )
    for skip in planned.skipped:
        log.warning("skipped: %s", skip.describe())
    if planned.expired:
        log.warning("marked %d abandoned batches of earlier runs failed", len(planned.expired))
    return [request.to_dict() for request in planned.requests]


def describe_request(request: Mapping[str, Any]) -> str:
    """The label of a fetch task instance."""
    return FetchRequest.from_dict(dict(request)).describe()


def ingest(
    request: Mapping[str, Any], on_fetched: Callable[[str], None] | None = None
) -> dict[str, Any] | None:
    """Fetch one request into the lake and load it: its BatchReport as JSON, or None when the
    source skips the request.

    One task for both steps: each task instance costs seconds of scheduling and start-up, and
    the lake already keeps what was fetched, so a failed load is replayed from there rather
    than re-fetched by a task of its own. `on_fetched` gets the manifest path before the load
    starts, so a load that dies without a word (killed, out of memory) is still found by
    `check_and_announce`."""
    manifest = fetch_to_lake(dict(request))
    if manifest is None:
        return None
    if on_fetched is not None:
        on_fetched(manifest)
    return load_from_lake(manifest).to_json()


def _all(values: Sequence[T] | None) -> list[T]:
    """Every item of a task's mapped results in one read.

    Airflow hands a mapped task's results over as a lazy sequence; iterating it asks for one
    item after another until the server answers "not found", which Airflow logs at error level
    on every run (`XCom not found ... offset=N`). A slice is one request and reads exactly what
    is there."""
    return list(values[:]) if values is not None else []


def _reports(reports: Sequence[Mapping[str, Any]] | None) -> list[BatchReport]:
    return [BatchReport.model_validate(report) for report in _all(reports)]


def _manifests(pulled: str | Sequence[str | None] | None) -> list[str | None]:
    """Manifest paths as Airflow hands them over: None, one path, or one per task instance."""
    if pulled is None:
        return []
    return [pulled] if isinstance(pulled, str) else _all(pulled)


def collect_failures(
    reports: Sequence[Mapping[str, Any]] | None,
    manifests: str | Sequence[str | None] | None,
    task_states: Mapping[str, str | None],
    quality_gate: str | None = None,
) -> dict[str, Any]:
    """What of this run did not succeed, once every fetch and load has ended.

    Failed task instances (by task id), symbols that failed inside a grouped fetch, and batches
    of this run still `running` in the audit although their load has ended: such a load died
    (SIGKILL, OOM) without reporting, so they are marked failed now, making the record true.
    """
    typed = _reports(reports)
    failed_tasks = sorted(name for name, state in task_states.items() if state in FAILED_STATES)
    symbols = sorted(
        f"{report.source_api} {failure.symbol} ({failure.error})"
        for report in typed
        for failure in report.fetch_failures
    )
    batch_ids: list[uuid.UUID] = []
    for manifest in _manifests(manifests):
        if manifest:
            try:
                batch_ids.append(lake.load_manifest(Path(manifest)).batch_id)
            except CryptoAnalyticsError as exc:
                log.warning("cannot read %s: %s", manifest, exc)
    abandoned: list[uuid.UUID] = []
    if batch_ids:
        from crypto_analytics.warehouse import connect, database_url

        with connect(database_url(), autocommit=True) as conn:
            abandoned = audit.fail_abandoned(
                conn,
                batch_ids,
                "abandoned: its load ended without finishing the batch (the process died)",
            )
    failures = RunFailures(
        failed_tasks=tuple(failed_tasks),
        failed_symbols=tuple(symbols),
        abandoned_batches=tuple(str(b) for b in abandoned),
        quality_gate=quality_gate,
    )
    for line in failures.lines():
        log.warning("%s", line)
    return failures.to_json()


def check_and_announce(
    reports: Sequence[Mapping[str, Any]] | None,
    manifests: str | Sequence[str | None] | None,
    task_states: Mapping[str, str | None],
    publish_failures: Callable[[dict[str, Any]], None],
) -> dict[str, Any] | None:
    """The run's own checks, once every fetch and load has ended: the quality gate over the
    batches it loaded, then what of it failed. Returns the Asset event's extra, or None when
    nothing new landed (then nothing is announced).

    The failures go to `publish_failures` before anything is raised, so `surface_failures`
    names them whatever happens here; a failed gate is one of them, and raises
    DataQualityError so that nothing is announced."""
    from crypto_analytics.quality import check_bronze

    rows = _all(reports)  # one read of the mapped results, for the gate and the failures
    typed = _reports(rows)
    verdict: QualityReport | None = None
    gate_error: DataQualityError | None = None
    if typed:
        try:
            verdict = check_bronze(typed)
        except DataQualityError as exc:
            gate_error = exc
    failures = collect_failures(
        rows, manifests, task_states, quality_gate=str(gate_error) if gate_error else None
    )
    publish_failures(failures)
    if gate_error is not None:
        raise gate_error
    if verdict is None or not verdict.rows_inserted:
        return None
    run = RunFailures.model_validate(failures)
    return {
        "batches": verdict.batches,
        "rows_inserted": verdict.rows_inserted,
        "complete": not run.any,
        "failures": run.lines(),
    }


def surface_failures(failures: Mapping[str, Any] | None) -> None:
    """Fail the run (BronzeRunFailed) when anything in it failed, or when its failures could
    not even be collected (`failures` is None: check_and_announce failed before that)."""
    if failures is None:
        raise BronzeRunFailed("the run's failures could not be collected: see check_and_announce")
    run = RunFailures.model_validate(failures)
    if run.any:
        raise BronzeRunFailed(run.message())
    log.info("every task of the run succeeded or was skipped")
