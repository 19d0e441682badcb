"""dbt's list of candle intervals is crypto_analytics.intervals' vocabulary.

The incremental daily_crypto_metrics reads each recomputed symbol's candles one listed interval at
a time (dbt/macros/intervals.sql, candle_intervals): an interval missing from the list would be
left out of incremental builds but not of a full refresh.
"""

from __future__ import annotations

import re
from pathlib import Path

from crypto_analytics.intervals import INTERVALS

MACROS = Path(__file__).resolve().parents[2] / "dbt" / "macros" / "intervals.sql"


def test_the_dbt_interval_list_is_the_python_vocabulary_finest_first():
    macro = re.search(
        r"macro candle_intervals\(\).*?return\(\[(?P<items>[^\]]*)\]\)", MACROS.read_text(), re.S
    )
    assert macro is not None, "candle_intervals() must return a literal list"
    listed = re.findall(r"'([^']+)'", macro["items"])
    assert listed == list(INTERVALS)
    assert listed == sorted(listed, key=INTERVALS.__getitem__)
