"""The alert engine on a real PostgreSQL: every rule type against its gold table's contract, missing
inputs and failing rules that never stop the others, cooldown and de-duplication, both channels
against local SMTP and HTTP servers, a failing channel that retries and loses nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from werkzeug import Request, Response

from crypto_analytics.alerts.service import deliver_notifications, evaluate_rules
from crypto_analytics.config import get_settings

pytestmark = pytest.mark.integration

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LAST_DAY = date(2024, 4, 30)

RULES = """
defaults: {cooldown: 1h, channels: [email, webhook]}
rules:
  - {id: btc_below_40k, type: price_threshold, symbols: [BTC], below: 40000, severity: critical}
  - {id: daily_move, type: price_move, window: 1d, pct: 10}
  - {id: hourly_move, type: price_move, window: 1h, pct: 5}
  - {id: vol_spike, type: volatility_spike, window_days: 7, history_days: 60, ratio: 2, min_history: 30}
  - {id: rebalance, type: portfolio_drift}
  - {id: model, type: model_drift}
  - {id: stale, type: stale_data, dataset: candles, max_age: 36h}
  - {id: stale_stream, type: stale_data, dataset: stream, max_age: 10m}
"""


def use_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str = RULES) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    monkeypatch.setenv("CRYPTO_ALERTS__RULES_FILE", str(path))
    monkeypatch.setenv("CRYPTO_ALERTS__RETRY_BASE_SECONDS", "30")
    get_settings.cache_clear()


def execute(url: str, sql: str, params: object = None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def create_daily_metrics(url: str) -> None:
    """gold.daily_crypto_metrics with the columns the rules read, 90 days of three tokens:
    BTC ends below 40,000; SOL jumps 20 % on the last day; ETH's last week is 5x as volatile."""
    execute(
        url,
        """
        create table gold.daily_crypto_metrics (symbol text, date date, close double precision,
            log_return double precision, _source_ingested_at timestamptz)
        """,
    )
    rng = np.random.default_rng(7)
    rows = []
    for symbol, start, daily_vol in (
        ("BTC", 45000.0, 0.01),
        ("ETH", 3000.0, 0.01),
        ("SOL", 100.0, 0.01),
    ):
        returns = rng.normal(0, daily_vol, 90)
        if symbol == "ETH":
            returns[-7:] = rng.normal(0, 0.05, 7)
        if symbol == "SOL":
            returns[-1] = np.log(1.2)
        if symbol == "BTC":
            returns[-1] = np.log(39000 / (start * np.exp(returns[:-1].sum())))
        closes = start * np.exp(np.cumsum(returns))
        for n in range(90):
            day = LAST_DAY - timedelta(days=89 - n)
            ingested = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                days=1, minutes=5
            )
            rows.append((symbol, day, float(closes[n]), float(returns[n]) if n else None, ingested))
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("insert into gold.daily_crypto_metrics values (%s, %s, %s, %s, %s)", rows)


def create_other_inputs(url: str) -> None:
    execute(
        url, "create table gold.data_quality_summary (symbol text, latest_close_at timestamptz)"
    )
    execute(
        url,
        "insert into gold.data_quality_summary values ('BTC', %s), ('ETH', %s), ('DAI', null)",
        (NOW - timedelta(hours=2), NOW - timedelta(hours=48)),
    )
    execute(
        url, "create table gold.stream_heartbeat (stream_id text, last_candle_close_at timestamptz)"
    )
    execute(
        url,
        "insert into gold.stream_heartbeat values ('binance:kline_1m', %s)",
        (NOW - timedelta(minutes=30),),
    )
    execute(
        url,
        """
        create table gold.rebalancing_recommendations (run_date date, target_strategy text,
            symbol text, current_weight double precision, target_weight double precision,
            drift double precision, band double precision, action text)
        """,
    )
    execute(
        url,
        """
        insert into gold.rebalancing_recommendations values
            ('2024-04-29', 'max_sharpe', 'BTC', 0.45, 0.30, 0.15, 0.075, 'sell'),
            ('2024-04-29', 'max_sharpe', 'ETH', 0.25, 0.26, -0.01, 0.065, 'hold')
        """,
    )
    execute(
        url,
        """
        create table gold.model_drift (as_of_date date, model text, model_version text,
            horizon_days integer, window_start date, window_end date, n_points integer,
            realised_mae double precision, validation_mae double precision,
            error_ratio double precision, threshold double precision, is_drift boolean,
            retraining_requested boolean, checked_at timestamptz)
        """,
    )
    execute(
        url,
        """
        insert into gold.model_drift values
            ('2024-04-30', 'gbm', '4', 7, '2024-04-01', '2024-04-30', 24, 0.08, 0.03, 2.67, 1.5,
             true, true, '2024-04-30 03:00+00')
        """,
    )


@pytest.fixture
def gold(warehouse_url: str) -> Iterator[str]:
    execute(warehouse_url, "create schema if not exists gold")
    yield warehouse_url


class Receiver:
    """A webhook receiver on the local HTTP server that can be told to fail."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.fail_next = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                return Response("upstream down", status=500)
            self.bodies.append(request.data)
        return Response("ok")


@pytest.fixture
def webhook(httpserver, monkeypatch) -> Receiver:
    receiver = Receiver()
    httpserver.expect_request("/hooks/secret-token", method="POST").respond_with_handler(receiver)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", httpserver.url_for("/hooks/secret-token"))
    get_settings.cache_clear()
    return receiver


def alert_rows(url: str) -> dict[tuple[str, str], tuple]:
    rows = execute(
        url,
        """
        select rule_id, subject, notified, suppressed_reason, resolved_at, value, evaluated_by
        from alerts.alert_events order by fired_at
        """,
    )
    return {(r[0], r[1]): r[2:] for r in rows}


def test_every_rule_type_judged_on_its_gold_table(gold, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path)
    create_daily_metrics(gold)
    create_other_inputs(gold)
    report = evaluate_rules(now=NOW)
    firing = {line.split(": ")[0] for line in report.firing}
    assert firing == {
        "btc_below_40k [BTC]",
        "daily_move [SOL]",
        "vol_spike [ETH]",
        "vol_spike [SOL]",  # a 20 % day is a volatility spike too
        "rebalance [portfolio]",
        "model [gbm 7d]",
        "stale [ETH]",
        "stale [DAI]",
        "stale_stream [binance:kline_1m]",
    }
    assert report.stream_only == ["hourly_move"]
    assert report.errors == [] and report.no_data == []
    events = alert_rows(gold)
    assert set(events) == {tuple(s.split(" [")[0:1]) + (s.split(" [")[1][:-1],) for s in firing}
    # no channel configured: recorded, not sent
    assert {v[1] for v in events.values()} == {
        "no channel configured (set notifications.smtp or ALERT_WEBHOOK_URL)"
    }
    value = events[("daily_move", "SOL")][3]
    assert value == pytest.approx(20.0)
    states = execute(
        gold, "select count(*) filter (where status = 'firing'), count(*) from alerts.rule_state"
    )
    assert states[0][0] == 9 and states[0][1] > 9  # ok subjects have state rows too


def test_missing_inputs_are_no_data_with_what_to_run_and_the_others_still_fire(
    gold, monkeypatch, tmp_path
):
    use_rules(monkeypatch, tmp_path)
    create_daily_metrics(gold)
    report = evaluate_rules(now=NOW)
    no_data = "\n".join(report.no_data)
    assert (
        "gold.rebalancing_recommendations does not exist; run the portfolio_optimization DAG"
        in no_data
    )
    assert "gold.model_drift does not exist; run the ml_inference DAG" in no_data
    assert "gold.stream_heartbeat does not exist; build the alert views" in no_data
    assert "gold.data_quality_summary does not exist; build gold" in no_data
    assert any(line.startswith("btc_below_40k [BTC]") for line in report.firing)
    assert report.errors == []
    whole = execute(gold, "select rule_id, status from alerts.rule_state where subject = '*'")
    assert set(whole) == {("rebalance", "no_data"), ("model", "no_data"), ("stale", "no_data"),
                          ("stale_stream", "no_data")}  # fmt: skip


def test_a_changed_upstream_contract_or_a_failing_rule_stops_only_that_rule(
    gold, monkeypatch, tmp_path
):
    use_rules(monkeypatch, tmp_path)
    create_daily_metrics(gold)
    execute(gold, "create table gold.model_drift (as_of_date date, model text, verdict boolean)")
    execute(gold, "create table gold.data_quality_summary (symbol text, latest_close_at text)")
    execute(gold, "insert into gold.data_quality_summary values ('BTC', 'yesterday')")
    report = evaluate_rules(now=NOW)
    assert any("gold.model_drift column(s) model_version" in line and "its contract changed" in line
               for line in report.no_data)  # fmt: skip
    assert len(report.errors) == 1 and report.errors[0].startswith("stale [*]: TypeError")
    assert any(line.startswith("btc_below_40k [BTC]") for line in report.firing)
    assert execute(gold, "select status from alerts.rule_state where rule_id = 'stale'") == [
        ("error",)
    ]


def test_one_episode_fires_once_and_the_cooldown_mutes_a_flapping_rule(
    gold, webhook, monkeypatch, tmp_path
):
    use_rules(
        monkeypatch,
        tmp_path,
        "rules: [{id: btc_low, type: price_threshold, symbols: [BTC], below: 40000, cooldown: 1h,"
        " channels: [webhook]}]",
    )
    create_daily_metrics(gold)

    def set_last_close(price: float) -> None:
        execute(gold, "update gold.daily_crypto_metrics set close = %s where symbol = 'BTC' and date = %s",
                (price, LAST_DAY))  # fmt: skip

    first = evaluate_rules(now=NOW, deliver=True)
    again = evaluate_rules(now=NOW + timedelta(minutes=5), deliver=True)  # same episode
    assert len(first.opened) == 1 and again.opened == [] and again.suppressed == []
    set_last_close(41000)
    assert evaluate_rules(now=NOW + timedelta(minutes=10)).resolved == ["btc_low [BTC]"]
    set_last_close(39500)
    flapped = evaluate_rules(now=NOW + timedelta(minutes=20), deliver=True)
    assert (
        flapped.opened == []
        and "cooldown: last notified 2024-05-01 12:00 UTC" in flapped.suppressed[0]
    )
    set_last_close(41000)
    evaluate_rules(now=NOW + timedelta(minutes=30))
    set_last_close(38000)
    later = evaluate_rules(now=NOW + timedelta(hours=2), deliver=True)
    assert len(later.opened) == 1
    assert (
        len(webhook.bodies) == 2
    )  # the first and the last episode; the muted one was recorded only
    rows = execute(
        gold, "select notified, resolved_at is null from alerts.alert_events order by fired_at"
    )
    assert rows == [(True, False), (False, False), (True, True)]
    # the database holds the de-duplication too: one open episode per rule and subject
    with pytest.raises(psycopg.errors.UniqueViolation):
        execute(
            gold,
            """
            insert into alerts.alert_events (alert_id, rule_id, rule_type, subject, severity,
                fired_at, message, evaluated_by, notified)
            values (gen_random_uuid(), 'btc_low', 'price_threshold', 'BTC', 'warning', now(), 'x',
                'cli', true)
            """,
        )


def test_an_older_observation_never_overrides_a_newer_one(gold, monkeypatch, tmp_path):
    use_rules(
        monkeypatch,
        tmp_path,
        "rules: [{id: btc_low, type: price_threshold, symbols: [BTC], below: 40000}]",
    )
    create_daily_metrics(gold)
    # the stream saw 41,000 at 12:01 today; gold's close of yesterday (39,000) is older
    execute(
        gold,
        """
        insert into alerts.rule_state (rule_id, subject, rule_type, status, since, evaluated_at,
            observed_at, value, evaluated_by)
        values ('btc_low', 'BTC', 'price_threshold', 'ok', %s, %s, %s, 41000, 'stream')
        """,
        (NOW, NOW, NOW + timedelta(minutes=1)),
    )
    report = evaluate_rules(now=NOW + timedelta(minutes=2))
    assert report.ignored_older == 1 and report.opened == [] and report.suppressed == []
    assert execute(gold, "select status, value from alerts.rule_state") == [("ok", 41000.0)]


def test_both_channels_deliver_and_a_failing_one_retries_until_it_lands(
    gold, webhook, smtp_server, monkeypatch, tmp_path
):
    use_rules(
        monkeypatch,
        tmp_path,
        "rules: [{id: btc_low, type: price_threshold, symbols: [BTC], below: 40000}]",
    )
    create_daily_metrics(gold)
    webhook.fail_next = 1
    smtp_server.reject_next = ["451 4.3.0 try again later"] * 3  # every attempt of the first pass
    report = evaluate_rules(now=NOW, deliver=True)
    assert report.delivery is not None and report.delivery["delivered"] == 0
    assert len(report.delivery["failed"]) == 2 and report.delivery["pending"] == 2
    pending = execute(
        gold,
        "select channel, status, attempts, next_attempt_at, last_error from alerts.deliveries order by 1",
    )
    assert [(c, s, a) for c, s, a, _, _ in pending] == [
        ("email", "pending", 1),
        ("webhook", "pending", 1),
    ]
    assert all(at == NOW + timedelta(seconds=30) for *_, at, _ in pending)
    assert (
        "451" in pending[0][4]
        and "HTTP 500" in pending[1][4]
        and "secret-token" not in pending[1][4]
    )

    # not due yet: nothing is sent, nothing is lost
    early = deliver_notifications(now=NOW + timedelta(seconds=10))
    assert early.delivered == [] and early.pending == 2
    due = deliver_notifications(now=NOW + timedelta(seconds=31))
    assert sorted(channel for _, channel in due.delivered) == ["email", "webhook"]
    assert due.pending == 0
    ((envelope, message),) = smtp_server.messages
    assert envelope.rcpt_tos == ["quant@example.com"]
    assert (
        str(message["Subject"]).strip().startswith("[crypto-analytics] WARNING btc_low: BTC - BTC ")
    )
    assert "below 40,000.00" in message.get_content()
    assert len(webhook.bodies) == 1 and b'"blocks"' in webhook.bodies[0]
    states = execute(
        gold, "select channel, status, attempts, last_error from alerts.deliveries order by 1"
    )
    assert states == [("email", "delivered", 2, None), ("webhook", "delivered", 2, None)]


def test_concurrent_delivery_passes_send_each_notification_once(
    gold, webhook, monkeypatch, tmp_path
):
    use_rules(
        monkeypatch,
        tmp_path,
        "rules: [{id: movers, type: price_move, window: 1d, pct: 0.0001, channels: [webhook]}]",
    )
    create_daily_metrics(gold)
    evaluate_rules(now=NOW)
    assert execute(gold, "select count(*) from alerts.deliveries") == [(3,)]
    threads = [
        threading.Thread(target=deliver_notifications, kwargs={"now": NOW}) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(webhook.bodies) == 3


def test_a_rule_removed_from_the_file_closes_its_open_episode(gold, monkeypatch, tmp_path):
    use_rules(
        monkeypatch,
        tmp_path,
        "rules: [{id: btc_low, type: price_threshold, symbols: [BTC], below: 40000}]",
    )
    create_daily_metrics(gold)
    evaluate_rules(now=NOW)
    use_rules(
        monkeypatch,
        tmp_path,
        "rules: [{id: other, type: price_threshold, symbols: [ETH], above: 1000000}]",
    )
    evaluate_rules(now=NOW + timedelta(minutes=1))
    assert execute(
        gold, "select resolution from alerts.alert_events where rule_id = 'btc_low'"
    ) == [("rule removed or disabled in the rules file",)]
    assert execute(gold, "select count(*) from alerts.rule_state where rule_id = 'btc_low'") == [
        (0,)
    ]
