"""Which scheduled build builds and tests each node of the dbt project.

The 15-minute builds are one `dbt build` per layer (crypto_analytics.dbt_artifacts.layer_selection);
gold's views over Python-written results are built by the DAG that writes each area's results
(crypto_analytics.dbt_runner.result_views_selection). Between them every gold model and every
test of one is built by exactly one of those builds, except the tests of SQL invariants, which
only CI and builds by hand run (crypto_analytics.contract.DBT_SQL_INVARIANT_TAG). dbt itself
lists the nodes (`dbt ls`), so these are the selections dbt really makes.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from crypto_analytics.contract import (
    DBT_RESULT_VIEWS,
    DBT_SQL_INVARIANT_TAG,
    SCHEDULED_DBT_VARS,
)
from crypto_analytics.dbt_artifacts import layer_selection
from crypto_analytics.dbt_runner import result_views_selection, run_dbt, vars_args

pytestmark = pytest.mark.slow

_OFFLINE = "postgresql://dbt-ls@localhost:5432/offline"  # dbt ls never connects


@pytest.fixture(scope="module")
def ls(tmp_path_factory: pytest.TempPathFactory):
    """`dbt ls` of a selection: {unique_id: node}, with one warm target folder for all calls."""
    target = tmp_path_factory.mktemp("dbt_ls")

    def run(*selection: str) -> dict[str, dict]:
        args = ["ls", *selection, "--output", "json", "--target-path", str(target)]
        with contextlib.redirect_stdout(io.StringIO()):
            result = run_dbt([*args, *vars_args(SCHEDULED_DBT_VARS)], url=_OFFLINE)
        nodes = [json.loads(line) for line in result.result or [] if line.strip()]
        return {n["unique_id"]: n for n in nodes if n["resource_type"] in ("model", "test")}

    return run


def _of(nodes: dict[str, dict], kind: str) -> set[str]:
    return {uid for uid, n in nodes.items() if n["resource_type"] == kind}


def test_each_gold_node_is_built_by_exactly_one_scheduled_build(ls):
    everything = ls("--select", "path:models/gold", "--indirect-selection", "eager")
    gold = ls(*layer_selection("gold"))
    areas = {area: ls(*result_views_selection(area)) for area in DBT_RESULT_VIEWS}
    builds = [gold, *areas.values()]

    for kind in ("model", "test"):
        chosen = [_of(b, kind) for b in builds]
        assert sum(len(c) for c in chosen) == len(set().union(*chosen)), f"a {kind} built twice"
    invariants = {uid for uid, n in everything.items() if DBT_SQL_INVARIANT_TAG in n["tags"]}
    assert _of(everything, "model") == set().union(*(_of(b, "model") for b in builds))
    assert _of(everything, "test") - invariants == set().union(*(_of(b, "test") for b in builds))
    assert not invariants & set().union(*builds)

    for area, selection in DBT_RESULT_VIEWS.items():
        folder = selection.removeprefix("path:") + "/"
        models = [everything[uid] for uid in _of(areas[area], "model")]
        assert models and all(m["original_file_path"].startswith(folder) for m in models)
        assert {m["config"]["materialized"] for m in models} == {"view"}
        assert not [
            uid for uid in _of(gold, "model") if gold[uid]["original_file_path"].startswith(folder)
        ]
        # every test of the area's views, its relationships to silver.token_universe included
        reads_area = {
            uid
            for uid in _of(everything, "test")
            if set(everything[uid]["depends_on"]["nodes"]) & _of(areas[area], "model")
        }
        assert _of(areas[area], "test") == reads_area
    relationships = [uid for uid in _of(areas["forecasting"], "test") if "token_universe" in uid]
    assert relationships, "the forecasting views' relationships to token_universe must run"


def test_the_sql_invariant_tests_are_the_dashboard_views_keys_and_computed_values(ls):
    """Only tests whose truth follows from upstream keys and checks, or from the view's own SQL
    (a `group by` or `distinct on` its grain, a `case` with an `else`), carry the tag."""
    tagged = ls("--select", f"tag:{DBT_SQL_INVARIANT_TAG}")
    assert {n["name"] for n in tagged.values()} == {
        "unique_combination_of_columns_price_candles_symbol__interval__timestamp",
        "expression_is_true_price_candles_vwap_is_null_or_vwap_0",
        "unique_combination_of_columns_technical_candles_symbol__interval__timestamp",
        "unique_dbt_test_results_unique_id",
        "not_null_dbt_test_results_unique_id",
        "unique_combination_of_columns_source_freshness_source_api__dataset__interval",
        "accepted_values_source_freshness_freshness_status__fresh__late__stale__failing__no_data",
        "unique_ingestion_batches_batch_id",
        "not_null_ingestion_batches_batch_id",
        "unique_combination_of_columns_quarantine_reasons_source_api__dataset__reason_kind",
    }
    assert {n["resource_type"] for n in tagged.values()} == {"test"}
    silver = ls(*layer_selection("silver"))
    assert silver and not set(silver) & set(tagged)
