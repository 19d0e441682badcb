"""The typed records ingestion hands between its steps: pipeline, CLI, Airflow tasks, quality gate.

Why models rather than dicts: the quality gate once checked `report["status"] == "failed"`, a
value no batch report could hold, and nothing noticed. Every field here is typed, the models are
frozen, and the only dicts are their JSON forms at the Airflow XCom boundary (`to_json()` /
`model_validate()`), so a renamed field or an impossible status fails in mypy or at the boundary
instead of silently never matching.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from crypto_analytics.ingestion.frames import Dataset


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (Airflow XCom, logs)."""
        return self.model_dump(mode="json")

    def to_dict(self) -> dict[str, Any]:
        return self.to_json()


class SymbolFailure(Record):
    """One symbol of a grouped request that could not be fetched (audited on its own row)."""

    symbol: str
    error: str


class Skip(Record):
    """Something deliberately not fetched, and why (a source lacks a token or an interval)."""

    source: str
    what: str
    reason: str

    def describe(self) -> str:
        return f"{self.source} {self.what}: {self.reason}"


class BatchReport(Record):
    """What loading one batch did. A batch that did not land raises instead of reporting, so a
    report is always `succeeded` (every row valid) or `partial` (some rows quarantined)."""

    batch_id: uuid.UUID
    source_api: str
    dataset: Dataset
    interval: str | None
    rows_fetched: int
    rows_inserted: int
    rows_duplicate: int
    rows_quarantined: int
    status: Literal["succeeded", "partial"]
    load_path: Literal["direct", "staged", "empty"] = "empty"
    symbols: tuple[str, ...] = ()
    #: the batch this one reloaded (a replay or a rerun of a batch that had already landed)
    replay_of: uuid.UUID | None = None
    #: symbols of the request that failed at fetch time (the others are in this batch)
    fetch_failures: tuple[SymbolFailure, ...] = ()

    def label(self) -> str:
        what = f"{self.dataset}/{self.interval}" if self.interval else str(self.dataset)
        return f"batch {self.batch_id} ({self.source_api} {what})"


class BadBatch(Record):
    """A lake batch that could not be loaded (corrupt or missing file, malformed manifest)."""

    manifest: str
    batch_id: uuid.UUID | None
    error: str


class ReplayReport(Record):
    """`replay`: every good batch loaded, every bad one named by its file."""

    loaded: tuple[BatchReport, ...]
    bad: tuple[BadBatch, ...]

    @property
    def rows_inserted(self) -> int:
        return sum(r.rows_inserted for r in self.loaded)


class QualityReport(Record):
    """The bronze quality gate's verdict on the batches one run loaded (it raises on problems)."""

    batches: int
    rows_inserted: int


class RunFailures(Record):
    """Everything of one run that did not succeed: failed tasks, symbols that failed inside a
    grouped request, batches whose load died without a word (found still `running`), and the
    quality gate's verdict when it failed."""

    failed_tasks: tuple[str, ...] = ()
    failed_symbols: tuple[str, ...] = ()
    abandoned_batches: tuple[str, ...] = ()
    quality_gate: str | None = None

    @property
    def requests_failed(self) -> bool:
        """A fetch, a load or a symbol failed (its data is missing; the rest landed)."""
        return bool(self.failed_tasks or self.failed_symbols or self.abandoned_batches)

    @property
    def any(self) -> bool:
        return self.requests_failed or bool(self.quality_gate)

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.quality_gate:
            out.append(self.quality_gate)
        if self.failed_tasks:
            out.append(
                f"{len(self.failed_tasks)} task instance(s) failed: {', '.join(self.failed_tasks)}"
            )
        if self.failed_symbols:
            out.append(
                f"{len(self.failed_symbols)} symbol(s) could not be fetched: "
                + "; ".join(self.failed_symbols)
            )
        if self.abandoned_batches:
            out.append(
                f"{len(self.abandoned_batches)} batch(es) died while loading and are now marked "
                f"failed: {', '.join(self.abandoned_batches)}"
            )
        return out

    def message(self) -> str:
        text = "; ".join(self.lines())
        if self.requests_failed:
            text += (
                ". The data of every other request landed; failed fetches and loads are in "
                "bronze.ingestion_audit (status = 'failed')."
            )
        if self.quality_gate:
            text += " The gate failed: nothing of this run was announced to silver."
        return text
