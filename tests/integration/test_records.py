"""Records that stay true: replays audited on rows of their own, quarantine without repeats,
repeated user input counted once, abandoned batches marked failed by the next run, and the
bronze DAG's own abandoned batches marked failed when its loads have ended."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from crypto_analytics.ingestion import audit, bronze_run, lake, pipeline
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource
from crypto_analytics.reporting import bronze_summary
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration

UNTIL = datetime(2024, 3, 1, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=20)


def _backfill(symbols=("BTC",), **kwargs):
    requests = pipeline.plan_requests(
        sources=["synthetic"],
        symbols=list(symbols),
        intervals=["1d"],
        since=SINCE,
        until=UNTIL,
        datasets=["ohlcv"],
        **kwargs,
    )
    return pipeline.ingest(requests)


@pytest.fixture
def two_bad_rows(monkeypatch):
    real = SyntheticSource.fetch_ohlcv

    def corrupt(self, token, interval, start, end):
        result = real(self, token, interval, start, end)
        result.frame.loc[3, "high"] = result.frame.loc[3, "low"] / 2
        result.frame.loc[5, "volume"] = -1.0
        return result

    monkeypatch.setattr(SyntheticSource, "fetch_ohlcv", corrupt)


def _one(url, query, params=None):
    with connect(url) as conn:
        return conn.execute(query, params).fetchone()


def test_replays_keep_the_audit_true_and_quarantine_each_row_once(warehouse_url, two_bad_rows):
    (original,), failures = _backfill()
    assert failures == [] and original.rows_quarantined == 2
    first = _one(
        warehouse_url,
        "select status, rows_inserted, rows_quarantined from bronze.ingestion_audit"
        " where batch_id = %s",
        (original.batch_id,),
    )
    for _ in range(2):
        replayed = pipeline.replay()
        assert replayed.bad == () and replayed.rows_inserted == 0
        (reload,) = replayed.loaded
        assert reload.replay_of == original.batch_id and reload.batch_id != original.batch_id

    # the original batch's record is untouched by the two replays...
    assert (
        _one(
            warehouse_url,
            "select status, rows_inserted, rows_quarantined from bronze.ingestion_audit"
            " where batch_id = %s",
            (original.batch_id,),
        )
        == first
        == ("partial", 18, 2)
    )
    # ...the reloads have rows of their own, and the counts add up to what bronze holds
    assert _one(
        warehouse_url,
        "select count(*), sum(rows_inserted), sum(rows_duplicate) from bronze.ingestion_audit"
        " where replay_of = %s",
        (original.batch_id,),
    ) == (2, 0, 36)
    (inserted,) = _one(warehouse_url, "select sum(rows_inserted) from bronze.ingestion_audit")
    assert inserted == _one(warehouse_url, "select count(*) from bronze.raw_crypto_prices")[0]
    # ...and the two rejected rows are kept once, with their first batch
    assert _one(
        warehouse_url, "select count(*), count(distinct _batch_id) from bronze.quarantine"
    ) == (2, 1)


def test_a_repeated_symbol_counts_once(warehouse_url):
    reports, failures = _backfill(symbols=("BTC", "BTC", "btc"))
    assert failures == []
    (report,) = reports
    assert (report.status, report.rows_inserted, report.rows_quarantined) == ("succeeded", 20, 0)
    assert _one(warehouse_url, "select count(*) from bronze.quarantine") == (0,)


def _abandoned_batch(url: str, hours_ago: float) -> uuid.UUID:
    batch_id = uuid.uuid4()
    with connect(url, autocommit=True) as conn:
        audit.start_batch(conn, batch_id=batch_id, source_api="synthetic", dataset="ohlcv")
        conn.execute(
            "update bronze.ingestion_audit set started_at = now() - %s where batch_id = %s",
            (timedelta(hours=hours_ago), batch_id),
        )
    return batch_id


def test_the_next_run_marks_a_killed_batch_failed(warehouse_url):
    killed = _abandoned_batch(warehouse_url, hours_ago=3)
    recent = _abandoned_batch(warehouse_url, hours_ago=0.1)  # may still be loading
    planned = pipeline.plan(sources=["synthetic"], symbols=["BTC"], since=SINCE, until=UNTIL)
    assert planned.expired == [killed]
    status = "select status, error from bronze.ingestion_audit where batch_id = %s"
    assert _one(warehouse_url, status, (killed,))[0] == "failed"
    assert "abandoned" in _one(warehouse_url, status, (killed,))[1]
    assert _one(warehouse_url, status, (recent,))[0] == "running"


def test_summary_never_shows_a_killed_batch_as_running(warehouse_url):
    killed = _abandoned_batch(warehouse_url, hours_ago=5)
    text = bronze_summary()
    (statuses,) = [line for line in text.splitlines() if line.startswith("batches:")]
    assert statuses == "batches: failed 1"
    assert "abandoned batch(es) marked failed just now" in text
    assert _one(
        warehouse_url, "select status from bronze.ingestion_audit where batch_id = %s", (killed,)
    ) == ("failed",)


def test_the_dag_marks_its_own_abandoned_loads_failed(warehouse_url, settings):
    """A task killed without a word after its fetch leaves its batch `running`; once every task
    of the run has ended, check_and_announce marks it failed and reports it, so the run fails,
    and announces nothing for a run that loaded nothing."""
    request = pipeline.plan_requests(
        sources=["synthetic"],
        symbols=["BTC"],
        intervals=["1d"],
        since=SINCE,
        until=UNTIL,
        datasets=["ohlcv"],
    )[0]
    manifest = pipeline.fetch_to_lake(request)  # fetched; its load then "died"
    batch_id = lake.load_manifest(manifest).batch_id
    published: list[dict] = []
    # one mapped instance: Airflow hands its manifest over as a plain value, not a list
    extra = bronze_run.check_and_announce(
        [], manifest, {"ingest_batch_0": "failed"}, published.append
    )
    assert extra is None
    (failures,) = published
    assert failures["abandoned_batches"] == [str(batch_id)]
    assert failures["failed_tasks"] == ["ingest_batch_0"]
    assert failures["quality_gate"] is None
    assert _one(
        warehouse_url, "select status from bronze.ingestion_audit where batch_id = %s", (batch_id,)
    ) == ("failed",)
    with pytest.raises(bronze_run.BronzeRunFailed, match="died while loading"):
        bronze_run.surface_failures(failures)
