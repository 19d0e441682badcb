"""The gold DAG's last task refreshes the dashboard's serving cache, after gold is announced."""

from __future__ import annotations

import pytest

from crypto_analytics.config import get_settings
from crypto_analytics.contract import GOLD_DAG_ID
from crypto_analytics.serving_cache import backend_for

REFRESH = "refresh_serving_cache"


def test_refresh_is_the_last_task_after_the_announcement(dag_bag) -> None:
    dag = dag_bag.dags[GOLD_DAG_ID]
    assert [t.task_id for t in dag.leaves] == [REFRESH]
    refresh = dag.task_dict[REFRESH]
    assert refresh.upstream_task_ids == {"announce_gold"}
    assert refresh.trigger_rule == "all_success"
    assert not refresh.outlets  # the Asset is the announcement's, not held back by a cache


def test_the_task_bumps_the_generation_the_dashboard_reads(
    dag_bag, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    backend = backend_for(get_settings())
    before = backend.generation()
    dag_bag.dags[GOLD_DAG_ID].task_dict[REFRESH].python_callable()
    assert backend.generation() != before
