"""Post-load data-quality gate for bronze: the step between loading and announcing new data.

Validation already keeps bad rows out row by row; this checks the batches as a whole, so a
source that starts sending mostly garbage, or a load that did not land what it reported, stops
the pipeline before silver reads it.
"""

from __future__ import annotations

import logging
from typing import Any

from crypto_analytics.config import get_settings
from crypto_analytics.errors import DataQualityError
from crypto_analytics.ingestion.frames import BRONZE_TABLE, Dataset
from crypto_analytics.warehouse import connect, database_url

log = logging.getLogger(__name__)


def check_bronze(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Check the batches of one run; returns a summary or raises DataQualityError listing failures."""
    settings = get_settings()
    limit = settings.ingestion.max_quarantine_ratio
    problems: list[str] = []
    inserted = 0
    with connect(database_url(settings)) as conn:
        for report in reports:
            batch = report["batch_id"]
            label = f"batch {batch} ({report['source_api']} {report['dataset']})"
            if report["status"] == "failed":
                problems.append(f"{label} failed: {report.get('error')}")
                continue
            fetched = report.get("rows_fetched", 0)
            quarantined = report.get("rows_quarantined", 0)
            if fetched and quarantined / fetched > limit:
                problems.append(
                    f"{label} quarantined {quarantined} of {fetched} rows "
                    f"(more than {limit:.0%}); see bronze.quarantine"
                )
            table = BRONZE_TABLE[Dataset(report["dataset"])]
            (landed,) = conn.execute(
                f"select count(*) from {table} where _batch_id = %s",  # noqa: S608 - fixed table names
                (batch,),
            ).fetchone() or (0,)
            if landed != report.get("rows_inserted", 0):
                problems.append(
                    f"{label} reported {report.get('rows_inserted')} rows inserted but bronze holds {landed}"
                )
            inserted += landed
    summary = {"batches": len(reports), "rows_inserted": inserted, "problems": problems}
    if problems:
        raise DataQualityError("bronze quality check failed:\n- " + "\n- ".join(problems))
    log.info("bronze quality check passed: %d batches, %d rows inserted", len(reports), inserted)
    return summary
