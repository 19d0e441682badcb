"""The whole ingestion path on the offline source against real Postgres: plan → lake → bronze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crypto_analytics.errors import ConfigError, SourceUnavailable
from crypto_analytics.ingestion import pipeline
from crypto_analytics.ingestion.sources.synthetic import SyntheticSource
from crypto_analytics.quality import check_bronze
from crypto_analytics.warehouse import connect

pytestmark = pytest.mark.integration

UNTIL = datetime(2024, 3, 1, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=20)


def _counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return {
            table: conn.execute(f"select count(*) from bronze.{table}").fetchone()[0]
            for table in ("raw_crypto_prices", "raw_market_data", "quarantine")
        }


def _backfill(symbols, intervals=("1d",), datasets=("ohlcv",)):
    requests = pipeline.plan_requests(
        sources=["synthetic"],
        symbols=list(symbols),
        intervals=list(intervals),
        since=SINCE,
        until=UNTIL,
        datasets=list(datasets),
    )
    return pipeline.ingest(requests)


def test_same_window_three_times_inserts_once(warehouse_url):
    first, failures = _backfill(["BTC", "ETH"], intervals=["1d", "1h"])
    assert failures == []
    expected = 2 * 20 + 2 * 20 * 24
    assert sum(r.rows_inserted for r in first) == expected
    for _ in range(2):
        again, failures = _backfill(["BTC", "ETH"], intervals=["1d", "1h"])
        assert failures == []
        assert sum(r.rows_inserted for r in again) == 0
        assert sum(r.rows_duplicate for r in again) == expected
    assert _counts(warehouse_url)["raw_crypto_prices"] == expected
    with connect(warehouse_url) as conn:
        statuses = conn.execute(
            "select status, count(*) from bronze.ingestion_audit group by 1"
        ).fetchall()
    assert dict(statuses) == {"succeeded": 6}  # (1d, 1h) × 3 runs, BTC and ETH in one request


def test_incremental_plan_starts_after_the_watermark_and_reruns_plan_nothing(warehouse_url):
    _backfill(["BTC"])
    later = UNTIL + timedelta(days=3, hours=5)
    planned = pipeline.plan_requests(
        sources=["synthetic"], symbols=["BTC"], intervals=["1d"], until=later, datasets=["ohlcv"]
    )
    assert [(r.start, r.end) for r in planned] == [(UNTIL, UNTIL + timedelta(days=3))]
    pipeline.ingest(planned)
    assert (
        pipeline.plan_requests(
            sources=["synthetic"],
            symbols=["BTC"],
            intervals=["1d"],
            until=later,
            datasets=["ohlcv"],
        )
        == []
    )
    assert _counts(warehouse_url)["raw_crypto_prices"] == 23


def test_one_failing_symbol_does_not_lose_the_others(warehouse_url, monkeypatch):
    real = SyntheticSource.fetch_ohlcv

    def flaky(self, token, interval, start, end):
        if token.symbol == "ETH":
            raise SourceUnavailable("synthetic", "ETH endpoint down")
        return real(self, token, interval, start, end)

    monkeypatch.setattr(SyntheticSource, "fetch_ohlcv", flaky)
    reports, failures = _backfill(["BTC", "ETH", "SOL"])
    assert len(failures) == 1 and "ETH endpoint down" in failures[0]
    assert sorted(s for r in reports for s in r.symbols) == ["BTC", "SOL"]
    with connect(warehouse_url) as conn:
        landed = dict(
            conn.execute(
                "select symbol, count(*) from bronze.raw_crypto_prices group by 1"
            ).fetchall()
        )
        failed = conn.execute(
            "select symbols, error from bronze.ingestion_audit where status = 'failed'"
        ).fetchall()
    assert landed == {"BTC": 20, "SOL": 20}
    assert failed == [(["ETH"], "SourceUnavailable: synthetic: ETH endpoint down")]


def test_bad_rows_are_quarantined_and_the_rest_loads(warehouse_url, monkeypatch):
    real = SyntheticSource.fetch_ohlcv

    def corrupt(self, token, interval, start, end):
        result = real(self, token, interval, start, end)
        result.frame.loc[3, "high"] = result.frame.loc[3, "low"] / 2
        result.frame.loc[5, "volume"] = -1.0
        return result

    monkeypatch.setattr(SyntheticSource, "fetch_ohlcv", corrupt)
    (report,), failures = _backfill(["BTC"])
    assert failures == []
    assert (report.rows_fetched, report.rows_inserted, report.rows_quarantined) == (
        20,
        18,
        2,
    )
    assert report.status == "partial"
    with connect(warehouse_url) as conn:
        reasons = [
            r[0]
            for r in conn.execute(
                "select reason from bronze.quarantine order by row_data->>'timestamp'"
            )
        ]
        pointer = conn.execute(
            "select distinct raw_payload_path from bronze.quarantine"
        ).fetchone()[0]
    assert any("high" in r for r in reasons) and any("volume" in r for r in reasons)
    assert pointer.endswith(".json")
    # 2 of 20 rows is above the 5% gate: the run's quality check fails and says why.
    with pytest.raises(Exception, match="quarantined 2 of 20 rows"):
        check_bronze([report])


def test_replay_rebuilds_bronze_from_the_lake(warehouse_url):
    _backfill(["BTC", "DOGE"], datasets=["ohlcv", "market"])
    before = _counts(warehouse_url)
    with connect(warehouse_url) as conn:
        snapshot = conn.execute(
            'select symbol, "timestamp", close from bronze.raw_crypto_prices order by 1, 2'
        ).fetchall()
        conn.execute(
            "truncate bronze.raw_crypto_prices, bronze.raw_market_data, bronze.ingestion_audit, bronze.watermarks"
        )
    replayed = pipeline.replay()
    assert replayed.bad == ()
    assert replayed.rows_inserted == before["raw_crypto_prices"] + before["raw_market_data"]
    assert _counts(warehouse_url) == before
    with connect(warehouse_url) as conn:
        assert (
            conn.execute(
                'select symbol, "timestamp", close from bronze.raw_crypto_prices order by 1, 2'
            ).fetchall()
            == snapshot
        )
    # Replaying onto a full bronze inserts nothing.
    assert pipeline.replay().rows_inserted == 0


def test_quality_check_passes_on_a_clean_run(warehouse_url):
    reports, _ = _backfill(["BTC"])
    assert check_bronze(reports).rows_inserted == 20


def test_bad_arguments_are_named(warehouse_url):
    with pytest.raises(ConfigError, match="unknown source 'nasdaq'"):
        pipeline.plan_requests(sources=["nasdaq"])
    with pytest.raises(ConfigError, match="unknown interval '7m'"):
        pipeline.plan_requests(sources=["synthetic"], intervals=["7m"])
    with pytest.raises(ConfigError, match="must be before"):
        pipeline.plan_requests(sources=["synthetic"], since=UNTIL, until=SINCE)


def test_tokens_sharing_a_window_are_grouped_into_few_requests(warehouse_url):
    plan = pipeline.plan_requests(
        sources=["synthetic"], intervals=["1d"], until=UNTIL, datasets=["ohlcv", "orderbook"]
    )
    ohlcv = [r for r in plan if r.dataset == "ohlcv"]
    books = [r for r in plan if r.dataset == "orderbook"]
    # 38 tokens, no watermarks yet: one shared window, at most 20 a request → 19 + 19.
    assert [len(r.symbols) for r in ohlcv] == [19, 19]
    assert len({(r.start, r.end) for r in ohlcv}) == 1
    assert sorted(s for r in ohlcv for s in r.symbols) == sorted(
        t.symbol for t in pipeline.get_settings().tokens
    )
    assert [len(r.symbols) for r in books] == [19, 19]
    # A token already up to date (its watermark is at the last closed candle) is left out.
    _backfill(["BTC"])
    replanned = pipeline.plan_requests(
        sources=["synthetic"],
        symbols=["BTC", "ETH", "SOL"],
        intervals=["1d"],
        until=UNTIL,
        datasets=["ohlcv"],
    )
    assert sorted((r.symbols, r.start) for r in replanned) == [
        (("ETH", "SOL"), UNTIL - timedelta(days=30)),
    ]
