"""What a failed bronze run says: each kind of failure, and only the advice that fits it."""

from __future__ import annotations

from crypto_analytics.ingestion.reports import RunFailures


def test_a_clean_run_has_nothing_to_say() -> None:
    assert not RunFailures().any
    assert RunFailures().lines() == []


def test_a_failed_gate_says_nothing_was_announced_and_nothing_about_failed_fetches() -> None:
    failures = RunFailures(
        quality_gate="bronze quality check failed:\n- batch x quarantined 3 of 4"
    )
    assert failures.any
    assert failures.lines() == ["bronze quality check failed:\n- batch x quarantined 3 of 4"]
    message = failures.message()
    assert "nothing of this run was announced to silver" in message
    assert "ingestion_audit" not in message


def test_failed_requests_point_at_the_audit_and_say_the_rest_landed() -> None:
    failures = RunFailures(
        failed_tasks=("ingest_batch_1",), failed_symbols=("synthetic ETH (down)",)
    )
    assert failures.lines() == [
        "1 task instance(s) failed: ingest_batch_1",
        "1 symbol(s) could not be fetched: synthetic ETH (down)",
    ]
    message = failures.message()
    assert "The data of every other request landed" in message
    assert "bronze.ingestion_audit (status = 'failed')" in message
    assert "announced" not in message
