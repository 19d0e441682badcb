"""Every page in Streamlit's AppTest: on the demo warehouse (no exception, the expected
elements), on a warehouse never built, on one built with nothing ingested, and on an unreachable
server (a clear message naming what to run, never a traceback)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from crypto_analytics.contract import DASHBOARD_PAGES, DASHBOARD_READER_ROLE

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parents[2] / "streamlit" / "app.py"
#: A port nothing listens on: the dashboard must say it cannot reach the warehouse.
UNREACHABLE_URL = "postgresql://postgres@127.0.0.1:1/nowhere"
SCRIPTS = [script for _, _, _, script in DASHBOARD_PAGES]
TITLES = {script: title for _, _, title, script in DASHBOARD_PAGES}
#: Pages whose data the demo always builds.
DEMO_CHARTED = [
    "app_pages/live_prices.py",
    "app_pages/technical_analysis.py",
    "app_pages/correlation.py",
    "app_pages/categories.py",
    "app_pages/portfolio.py",
    "app_pages/data_health.py",
]


def has_rows(url: str, relation: str) -> bool:
    """Whether a relation exists in the warehouse and holds a row (read as the owner)."""
    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass(%s)", (relation,)).fetchone() == (None,):
            return False
        return bool(conn.execute(f"select exists (select 1 from {relation})").fetchone()[0])  # type: ignore[index]


def open_page(script: str) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.run()
    if script != SCRIPTS[0]:
        app.switch_page(script)
        app.run()
    return app


def chart_keys(app: AppTest) -> list[str]:
    """The user keys of the page's Plotly charts (element ids end with the key)."""
    return [chart.proto.id.rsplit("-", 1)[-1] for chart in app.get("plotly_chart")]


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


@pytest.fixture
def on_demo(demo_warehouse: str, use_warehouse: Callable[[str], None]) -> str:
    use_warehouse(demo_warehouse)
    return demo_warehouse


@pytest.mark.parametrize("script", DEMO_CHARTED)
def test_page_draws_its_main_chart_on_the_demo(script: str, on_demo: str) -> None:
    app = open_page(script)
    assert not app.exception, texts(app.exception)
    assert [t.value for t in app.title] == [TITLES[script]]
    assert "main_chart" in chart_keys(app)
    assert not app.error, texts(app.error)


def test_live_prices_shows_tickers_holdings_and_candles(on_demo: str) -> None:
    app = open_page("app_pages/live_prices.py")
    labels = [m.label for m in app.metric]
    assert labels[:5] == ["BTC", "ETH", "SOL", "BNB", "XRP"]
    assert "Portfolio value" in labels
    tickers = next(df.value for df in app.dataframe if "change_pct" in df.value.columns)
    assert len(tickers) == 38 and tickers["price"].notna().all()
    assert app.selectbox[0].value == "BTC"
    assert app.segmented_control(key="live_interval").value == "1h"
    # the latest alerts, from the alert engine's view (its first pass on the demo)
    if has_rows(on_demo, "gold.alerts"):
        latest = app.dataframe[-1].value
        assert "rule_id" in latest.columns and 0 < len(latest) <= 10
        assert latest["fired_at"].is_monotonic_decreasing
    else:
        assert "No alert has fired" in texts(app.caption)


def test_live_prices_switches_interval_and_token(on_demo: str) -> None:
    app = open_page("app_pages/live_prices.py")
    app.segmented_control(key="live_interval").set_value("1d").run()
    assert not app.exception
    app.selectbox[0].set_value("ETH").run()
    assert not app.exception
    assert "ETH last" in [m.label for m in app.metric]


def test_technical_analysis_lists_the_pipelines_levels(on_demo: str) -> None:
    app = open_page("app_pages/technical_analysis.py")
    levels = app.dataframe[0].value
    assert set(levels["kind"]) <= {"support", "resistance"} and len(levels) > 0
    with psycopg.connect(on_demo) as conn:
        stored = conn.execute(
            "select count(*) from gold.support_resistance_levels where symbol = 'BTC' and interval = '1d'"
        ).fetchone()
    assert stored == (len(levels),)  # the page shows the pipeline's levels, computes none
    assert any("RSI 14" in m.value for m in app.markdown)
    app.segmented_control(key="ta_interval").set_value("1h").run()
    assert not app.exception and "main_chart" in chart_keys(app)


def test_correlation_windows_and_rolling_view(on_demo: str) -> None:
    app = open_page("app_pages/correlation.py")
    assert {"main_chart", "network_chart", "rolling_chart"} <= set(chart_keys(app))
    app.segmented_control(key="correlation_window").set_value(30).run()
    assert not app.exception and "main_chart" in chart_keys(app)
    app.multiselect[0].set_value([]).run()
    assert "rolling_chart" not in chart_keys(app)


def test_portfolio_recomputes_on_the_spot(on_demo: str) -> None:
    app = open_page("app_pages/portfolio.py")
    assert {"main_chart", "weights_chart", "equity_chart"} <= set(chart_keys(app))
    app.multiselect[0].set_value(["BTC", "ETH", "SOL", "LINK"])
    app.number_input[1].set_value(0.5)
    app.button[0].click().run()
    assert not app.exception, texts(app.exception)
    assert "whatif_chart" in chart_keys(app), texts(app.error)


def test_portfolio_refuses_a_set_too_large_with_the_limit(on_demo: str) -> None:
    app = open_page("app_pages/portfolio.py")
    app.multiselect[0].set_value(["BTC"])
    app.button[0].click().run()
    assert not app.exception
    assert "pick between 2 and 12 assets" in texts(app.error)


def test_predictions_chart_the_forecasts_or_say_what_fills_them(on_demo: str) -> None:
    """The demo trains and predicts when the forecasting package is there; either way the page
    shows what gold holds."""
    app = open_page("app_pages/predictions.py")
    assert not app.exception, texts(app.exception)
    if has_rows(on_demo, "gold.price_predictions"):
        assert "main_chart" in chart_keys(app)
        evaluation = next(df.value for df in app.dataframe if "mase" in df.value.columns)
        assert evaluation["n_points"].min() > 0 and evaluation["mase"].notna().any()
        assert "Champion" in [m.label for m in app.metric] or "No champion decision yet." in texts(
            app.caption
        )
    else:
        assert "main_chart" not in chart_keys(app)
        assert "ml train" in texts(app.info)


def test_alerts_chart_the_history_or_say_what_fills_it(on_demo: str) -> None:
    app = open_page("app_pages/alerts.py")
    assert not app.exception, texts(app.exception)
    assert "Active rules" in [h.value for h in app.subheader]
    rules = app.dataframe[-1].value
    assert {"id", "type", "severity", "enabled"} <= set(rules.columns) and len(rules) > 0
    if has_rows(on_demo, "gold.alerts"):
        assert "main_chart" in chart_keys(app) or "No alert fired" in texts(app.success)
    else:
        assert "main_chart" not in chart_keys(app)
        assert "alerts evaluate" in texts(app.info)


def test_alerts_and_the_stream_heartbeat_as_their_engines_write_them(
    built_empty_warehouse: str, use_warehouse: Callable[[str], None]
) -> None:
    """Rows as the alert engine and the stream write them reach the Alerts, Live prices and
    Data health pages through the gold views (a firing critical and a resolved warning)."""
    from crypto_analytics.serving_cache import refresh

    use_warehouse(built_empty_warehouse)
    with psycopg.connect(built_empty_warehouse, autocommit=True) as conn:
        conn.execute(
            """
            insert into alerts.alert_events
                (alert_id, rule_id, rule_type, subject, severity, fired_at, value, threshold,
                 message, evaluated_by, notified, resolved_at)
            values
                (gen_random_uuid(), 'test_btc_below', 'price_threshold', 'BTC', 'critical',
                 now() - interval '2 hours', 39000, 40000, 'BTC 39,000.00 below 40,000.00',
                 'tests', true, null),
                (gen_random_uuid(), 'test_daily_move', 'price_move', 'ETH', 'warning',
                 now() - interval '3 days', 16.2, 15, 'ETH up 16.2 % in 1d', 'tests', true,
                 now() - interval '2 days')
            """
        )
        conn.execute(
            """
            insert into stream.heartbeat
                (stream_id, feed, source_api, interval, symbols, status, started_at,
                 connected_since, last_message_at, updated_at)
            values ('test-stream', 'synthetic', 'synthetic', '1m', array['BTC'], 'connected',
                    now() - interval '1 hour', now() - interval '1 hour', now(), now())
            """
        )
    try:
        refresh()  # results other tests cached for this warehouse must not hide the new rows
        alerts = open_page("app_pages/alerts.py")
        assert not alerts.exception, texts(alerts.exception)
        assert "main_chart" in chart_keys(alerts)
        metrics = {m.label: m.value for m in alerts.metric}
        assert (
            metrics["Episodes"],
            metrics["Firing now"],
            metrics["critical"],
            metrics["warning"],
        ) == ("2", "1", "1", "1")
        history = alerts.dataframe[0].value
        assert set(history["rule_id"]) == {"test_btc_below", "test_daily_move"}
        assert dict(zip(history["rule_id"], history["status"], strict=True)) == {
            "test_btc_below": "firing",
            "test_daily_move": "resolved",
        }

        live = open_page("app_pages/live_prices.py")  # no prices here, but the alerts show
        assert not live.exception
        assert list(live.dataframe[-1].value["rule_id"]) == ["test_btc_below", "test_daily_move"]

        health = open_page("app_pages/data_health.py")
        assert not health.exception
        stream = next(df.value for df in health.dataframe if "stream_id" in df.value.columns)
        assert list(stream["stream_id"]) == ["test-stream"]
    finally:
        with psycopg.connect(built_empty_warehouse, autocommit=True) as conn:
            conn.execute("delete from alerts.alert_events where evaluated_by = 'tests'")
            conn.execute("delete from stream.heartbeat where stream_id = 'test-stream'")
        refresh()


def test_data_health_counts_freshness_and_dbt_tests(on_demo: str) -> None:
    app = open_page("app_pages/data_health.py")
    metrics = {m.label: m.value for m in app.metric}
    with psycopg.connect(on_demo) as conn:
        feeds = conn.execute("select count(*) from gold.source_freshness").fetchone()[0]  # type: ignore[index]
        passed = conn.execute(
            "select count(*) from gold.dbt_test_results where status = 'pass'"
        ).fetchone()[0]  # type: ignore[index]
    assert sum(int(metrics[s]) for s in ("fresh", "late", "stale", "failing", "no data")) == feeds
    assert int(metrics["pass"]) == passed > 0


def dashboard_queries():  # type: ignore[no-untyped-def]
    """The dashboard's queries module (streamlit/ is not a package: imported from its folder)."""
    sys.path.insert(0, str(APP.parent))
    try:
        import queries
    finally:
        sys.path.remove(str(APP.parent))
    return queries


def test_queries_run_as_the_read_only_role(on_demo: str) -> None:
    """The dashboard logs in as dashboard_reader, never as the warehouse owner."""
    queries = dashboard_queries()
    who = queries.fetch("select current_user as who", (), "current_user", "")
    assert who["who"].iloc[0] == DASHBOARD_READER_ROLE


@pytest.mark.parametrize("script", SCRIPTS)
def test_page_on_a_warehouse_never_built_says_what_to_run(
    script: str, warehouse_url: str, use_warehouse: Callable[[str], None]
) -> None:
    use_warehouse(warehouse_url)
    app = open_page(script)
    assert not app.exception, texts(app.exception)
    assert not chart_keys(app)
    notice = texts(app.info)
    assert "is not built yet" in notice and "crypto-analytics dbt build" in notice


@pytest.mark.parametrize("script", SCRIPTS)
def test_page_on_a_built_but_empty_warehouse_says_what_to_ingest(
    script: str, built_empty_warehouse: str, use_warehouse: Callable[[str], None]
) -> None:
    use_warehouse(built_empty_warehouse)
    app = open_page(script)
    assert not app.exception, texts(app.exception)
    assert "main_chart" not in chart_keys(app)
    notice = texts(app.info)
    assert "yet" in notice
    assert any(hint in notice for hint in ("make demo", "crypto-analytics ingest", "optimize", "ml train", "alerts evaluate"))  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS)
def test_page_with_the_warehouse_unreachable_says_so_in_one_line(
    script: str, use_warehouse: Callable[[str], None]
) -> None:
    use_warehouse(UNREACHABLE_URL)
    app = open_page(script)
    assert not app.exception, texts(app.exception)
    errors = [e.value for e in app.error]
    assert len(errors) == 1
    assert "cannot reach the warehouse as dashboard_reader@127.0.0.1:1/nowhere" in errors[0]
    assert "CRYPTO_DATABASE_URL" in errors[0]


def test_empty_frames_survive_the_cache(on_demo: str) -> None:
    """A query with no rows is cached as an empty frame with its columns (not as an error)."""
    queries = dashboard_queries()
    first = queries.recent_gaps(5)
    again = queries.recent_gaps(5)
    assert list(first.columns) == list(again.columns) == [
        "symbol", "interval", "gap_start", "gap_end", "missing_candles", "resumed_from_source"
    ]  # fmt: skip
    assert isinstance(again, pd.DataFrame)


def test_a_gold_relation_older_than_the_dashboard_says_rebuild(on_demo: str) -> None:
    """Dashboard code upgraded before gold was rebuilt: a missing column is a notice, not a
    traceback."""
    queries = dashboard_queries()
    with pytest.raises(queries.NotBuilt, match="older than this dashboard") as caught:
        queries.fetch(
            "select no_such_column from gold.market_tickers", (), "gold.market_tickers", "dbt"
        )
    assert caught.value.relation == "gold.market_tickers"


def test_the_dashboard_never_imports_ingestion_code(demo_warehouse: str, tmp_path: Path) -> None:
    """Every page run in a fresh interpreter: nothing under crypto_analytics.ingestion loads."""
    import os
    import subprocess

    script = f"""
import sys
from streamlit.testing.v1 import AppTest
from crypto_analytics.contract import DASHBOARD_PAGES
app = AppTest.from_file({str(APP)!r}, default_timeout=120)
app.run()
for _, _, _, page in DASHBOARD_PAGES:
    app.switch_page(page)
    app.run()
    assert not app.exception, page
print(sorted(m for m in sys.modules if m.startswith("crypto_analytics.ingestion")))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTO_")}
    env.update(CRYPTO_DATABASE_URL=demo_warehouse, CRYPTO_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
