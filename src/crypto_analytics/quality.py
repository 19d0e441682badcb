"""Post-load data-quality gate for bronze: the step between loading and announcing new data.

Validation already keeps bad rows out row by row; this checks the batches a run loaded as a
whole, so a source that starts sending mostly garbage, or a load that did not land what it
reported, stops the pipeline before silver reads it. It judges what landed; what failed to land
(a failed fetch or load, a load that died) is the failure surfacing's business
(crypto_analytics.ingestion.bronze_run), which fails the run without holding back good data.

Before checking, batches of earlier runs still `running` past ingestion.stale_batch_minutes are
marked failed, so a killed load never stays `running` in the audit the gate and dbt read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from crypto_analytics.config import Settings, get_settings
from crypto_analytics.errors import DataQualityError
from crypto_analytics.ingestion import audit
from crypto_analytics.ingestion.frames import BRONZE_TABLE
from crypto_analytics.ingestion.reports import BatchReport, QualityReport
from crypto_analytics.warehouse import connect, database_url

log = logging.getLogger(__name__)


def check_bronze(reports: Sequence[BatchReport], settings: Settings | None = None) -> QualityReport:
    """Check the batches of one run; returns the verdict or raises DataQualityError listing
    every failing check (quarantine share above ingestion.max_quarantine_ratio, rows landed in
    bronze differing from rows reported, an audit row that disagrees with its report)."""
    settings = settings or get_settings()
    limit = settings.ingestion.max_quarantine_ratio
    problems: list[str] = []
    inserted = 0
    with connect(database_url(settings)) as conn:
        audit.expire_stale_running(conn, timedelta(minutes=settings.ingestion.stale_batch_minutes))
        for report in reports:
            label = report.label()
            if report.rows_fetched and report.rows_quarantined / report.rows_fetched > limit:
                problems.append(
                    f"{label} quarantined {report.rows_quarantined} of {report.rows_fetched} "
                    f"rows (more than {limit:.0%}); see bronze.quarantine"
                )
            (landed,) = conn.execute(
                f"select count(*) from {BRONZE_TABLE[report.dataset]} where _batch_id = %s",  # noqa: S608 - table names from frames.SPECS
                (report.batch_id,),
            ).fetchone() or (0,)
            if landed != report.rows_inserted:
                problems.append(
                    f"{label} reported {report.rows_inserted} rows inserted but bronze holds "
                    f"{landed}"
                )
            recorded = audit.get_batch(conn, report.batch_id)
            if recorded is None or recorded["status"] != report.status:
                status = recorded["status"] if recorded else "no audit row"
                problems.append(f"{label} reported {report.status} but the audit says {status}")
            inserted += landed
    if problems:
        raise DataQualityError("bronze quality check failed:\n- " + "\n- ".join(problems))
    log.info("bronze quality check passed: %d batches, %d rows inserted", len(reports), inserted)
    return QualityReport(batches=len(reports), rows_inserted=inserted)
