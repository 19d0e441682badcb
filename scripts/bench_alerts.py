"""Benchmark the alert engine (`make bench`): one evaluation of every rule on gold, and one pass of
the stream's price rules per micro-batch.

In a scratch database (created for the run, dropped afterwards) gold's inputs are laid out with
the columns and keys of the real tables, at the size of a full warehouse: daily metrics for the
38-token universe over six years, the data-quality summary, a year of weekly rebalancing runs,
a year of daily drift checks for six models and three horizons, and the stream's heartbeat.
Then:
  1. `evaluate_rules` with the shipped config/alerts.yaml (every rule type): reads, the state
     machine's one transaction and the rule-retirement pass; median of --repeat runs, plus each
     rule's own evaluation time;
  2. the stream's pass after a micro-batch (LiveAlerts.evaluate: thresholds and the 1 h move for
     38 tokens, recorded in one transaction); median of --repeat runs.
The server comes from CRYPTO_DATABASE_URL, else the embedded one. Printing is the point here.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from crypto_analytics.alerts.engine import evaluate_rule
from crypto_analytics.alerts.gold_inputs import GoldInputs
from crypto_analytics.alerts.live import LiveAlerts
from crypto_analytics.alerts.rules import PriceMoveRule, load_rules
from crypto_analytics.alerts.service import evaluate_rules
from crypto_analytics.config import Settings, get_settings
from crypto_analytics.migrations.runner import init_database
from crypto_analytics.warehouse import database_url, url_for_database

DAYS = 6 * 365


def lay_out_gold(url: str, settings: Settings, today: date) -> None:
    symbols = [t.symbol for t in settings.tokens]
    rng = np.random.default_rng(17)
    rows = []
    for symbol in symbols:
        returns = rng.standard_t(4, DAYS) * 0.02
        closes = 100 * np.exp(np.cumsum(returns))
        for n in range(DAYS):
            day = today - timedelta(days=DAYS - n)
            rows.append((symbol, day, float(closes[n]), float(returns[n]) if n else None))
    frame = pd.DataFrame(rows, columns=["symbol", "date", "close", "log_return"])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists gold")
        conn.execute(
            """
            create table gold.daily_crypto_metrics (symbol text not null, date date not null,
                close double precision not null, log_return double precision,
                _source_ingested_at timestamptz not null default now(),
                primary key (symbol, date))
            """
        )
        with conn.cursor().copy(
            "copy gold.daily_crypto_metrics (symbol, date, close, log_return) from stdin"
        ) as copy:
            for record in frame.itertuples(index=False):
                copy.write_row(record)
        conn.execute("create index on gold.daily_crypto_metrics (date)")
        conn.execute(
            "create table gold.data_quality_summary as select symbol, max(date)::timestamptz "
            "+ interval '1 day' as latest_close_at from gold.daily_crypto_metrics group by symbol"
        )
        conn.execute(
            "create table gold.stream_heartbeat as select 'binance:kline_1m'::text as stream_id, "
            "now() - interval '2 minutes' as last_candle_close_at"
        )
        conn.execute(
            """
            create table gold.rebalancing_recommendations as
            select d::date as run_date, 'max_sharpe'::text as target_strategy, s.symbol,
                   random() * 0.1 as current_weight, 1.0 / 38 as target_weight,
                   random() * 0.1 - 1.0 / 38 as drift, 0.02::double precision as band
            from generate_series(%s::date - 364, %s::date, interval '7 days') d,
                 (select distinct symbol from gold.daily_crypto_metrics) s
            """,
            (today, today),
        )
        conn.execute(
            """
            create table gold.model_drift as
            select d::date as as_of_date, m as model, '1'::text as model_version, h as horizon_days,
                   30 as n_points, 0.05 * random() as realised_mae, 0.03 as validation_mae,
                   2 * random() as error_ratio, 1.5 as threshold, random() > 0.9 as is_drift,
                   d::timestamptz as checked_at
            from generate_series(%s::date - 364, %s::date, interval '1 day') d,
                 unnest(array['naive', 'drift', 'prophet', 'lstm', 'gbm', 'ensemble']) m,
                 unnest(array[1, 7, 30]) h
            """,
            (today, today),
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    settings = get_settings()
    server = database_url(settings)
    name = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = url_for_database(server, name)
    os.environ["CRYPTO_DATABASE_URL"] = url  # the engine connects where the settings say
    get_settings.cache_clear()
    settings = get_settings()
    try:
        with psycopg.connect(url) as conn:
            init_database(conn, settings)
        today = datetime.now(UTC).date()
        lay_out_gold(url, settings, today)
        ruleset = load_rules(settings)
        now = datetime.now(UTC)

        walls = []
        for n in range(args.repeat):
            started = time.perf_counter()
            report = evaluate_rules(settings, now=now + timedelta(seconds=n))
            walls.append(time.perf_counter() - started)
        per_rule: dict[str, float] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            inputs = GoldInputs(conn, [token.symbol for token in settings.tokens])
            for rule in ruleset.enabled:
                if isinstance(rule, PriceMoveRule) and rule.on_stream:
                    continue  # measured by the stream (below), never on gold
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    evaluate_rule(rule, inputs, settings, now)
                    times.append(time.perf_counter() - started)
                per_rule[f"{rule.id} ({rule.type})"] = statistics.median(times)
        print(
            f"alert evaluation on gold, {len(ruleset.enabled)} rules of config/alerts.yaml, "
            f"{len(settings.tokens)} tokens x {DAYS} days: median {statistics.median(walls) * 1000:.0f} ms "
            f"(runs {', '.join(f'{w * 1000:.0f}' for w in walls)} ms; {len(report.firing)} "
            "subjects firing)"
        )
        for label, seconds in per_rule.items():
            print(f"  {label:<48} {seconds * 1000:7.1f} ms")

        live = LiveAlerts(settings, url, source_api="binance", interval="1m", where="bench")
        minute = now.replace(second=0, microsecond=0)
        frame = pd.DataFrame(
            [
                (t.symbol, minute - timedelta(minutes=m), 100.0 + m * 0.01)
                for t in settings.tokens
                for m in range(live.keep)
            ],
            columns=["symbol", "timestamp", "close"],
        )
        live.remember(frame)
        passes = []
        for _ in range(args.repeat * 4):
            started = time.perf_counter()
            live.evaluate()
            passes.append(time.perf_counter() - started)
        live.close()
        print(
            f"stream price rules per micro-batch ({len(live.rules)} rules, {len(settings.tokens)} "
            f"tokens): median {statistics.median(passes) * 1000:.1f} ms"
        )
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
