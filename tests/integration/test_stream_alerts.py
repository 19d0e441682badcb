"""Price rules evaluated by the stream on every micro-batch: a threshold and a 5-minute move on the
real recorded candles fire, resolve, and reach a local webhook while the stream runs."""

from __future__ import annotations

import json

import psycopg
import pytest
from stream_fakes import (
    NOW,
    Hold,
    KlinesVenue,
    Pause,
    ScriptedBinance,
    Send,
    configure_stream,
    count_rows,
    recorded_rest_klines,
    run_until,
    serve_klines,
    ws_from_rest,
)

from crypto_analytics.config import get_settings
from crypto_analytics.streaming.service import build_consumer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

RULES = """
rules:
  - {id: btc_above, type: price_threshold, symbols: [BTC], above: 60770, channels: [webhook]}
  - {id: btc_5m, type: price_move, symbols: [BTC], window: 5m, pct: 0.05, direction: up,
     channels: [webhook]}
  - {id: btc_daily, type: price_move, symbols: [BTC], window: 1d, pct: 1}
"""


def test_stream_fires_price_rules_and_notifies(
    warehouse_url, shared_data, httpserver, monkeypatch, tmp_path
):
    rows = recorded_rest_klines(shared_data)
    received: list[dict] = []
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda request: received.append(json.loads(request.data)) or "ok"
    )
    rest_url = serve_klines(httpserver, KlinesVenue(rows))
    # one candle a minute, as live: each micro-batch is judged on its own latest close
    paced = [step for row in rows for step in (Send(ws_from_rest(row)), Pause(0.5))]
    server = ScriptedBinance([[*paced, Hold()]])
    with server.running():
        configure_stream(
            monkeypatch,
            tmp_path,
            CRYPTO_STREAM__WS_URL=server.url,
            CRYPTO_STREAM__REST_URL=rest_url,
        )
        (tmp_path / "alerts.yaml").write_text(RULES)
        monkeypatch.setenv("ALERT_WEBHOOK_URL", httpserver.url_for("/hook"))
        get_settings.cache_clear()
        run_until(
            lambda: build_consumer(feed="binance", clock=lambda: NOW),
            lambda: (
                count_rows(
                    warehouse_url,
                    "select count(*) from alerts.deliveries where status = 'delivered'",
                )
                >= 2
                and count_rows(warehouse_url, "select count(*) from bronze.raw_crypto_prices") >= 10
            ),
        )
    with psycopg.connect(warehouse_url) as conn:
        events = conn.execute(
            """
            select rule_id, evaluated_by, value, notified, resolved_at is not null
            from alerts.alert_events order by observed_at, rule_id
            """
        ).fetchall()
        daily = conn.execute(
            "select count(*) from alerts.rule_state where rule_id = 'btc_daily'"
        ).fetchone()
    above = [
        (value, notified, resolved)
        for rule, _, value, notified, resolved in events
        if rule == "btc_above"
    ]
    # closes 23:03-23:12: 60,719.27 60,771.81 60,768.71 60,786.56 60,759.65 60,774.88 60,776.64
    # 60,738.58 60,739.85 60,739.85: three episodes over 60,770, each resolved; the two that start
    # within the hour's cooldown of the first are recorded, not sent
    assert above == [(60771.81, True, True), (60786.56, False, True), (60774.88, False, True)]
    moves = [
        (value, notified, resolved)
        for rule, _, value, notified, resolved in events
        if rule == "btc_5m"
    ]
    assert len(moves) == 1 and moves[0][1:] == (True, True)
    assert moves[0][0] == pytest.approx((60774.88 / 60719.27 - 1) * 100)  # 23:08 against 23:03
    assert {by for _, by, *_ in events} == {"stream"}
    assert daily == (0,)  # a 1-day move is gold's to judge, never the stream's
    texts = sorted(body["text"] for body in received)
    assert len(texts) == 2
    assert any("BTC 60,771.81 above 60,770.00" in t for t in texts)
    assert any("BTC up 0.09% in 5m" in t for t in texts)
