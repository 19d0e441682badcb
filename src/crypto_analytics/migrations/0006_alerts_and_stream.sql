-- Alerts and the real-time stream: state the Python services own, read by dbt as sources.
--
-- Why two schemas of their own rather than bronze or gold: these rows are neither raw market data
-- (bronze) nor anything dbt builds (silver/gold); they are the running state of two services.
-- dbt declares them as sources (dbt/models/gold/alerts/_alerts__sources.yml) and exposes them in
-- gold through views (gold.alerts, gold.alert_rule_state, gold.stream_heartbeat, ...), so the
-- dashboard's read-only role never needs these schemas and dbt docs shows the lineage.

create schema if not exists alerts;
create schema if not exists stream;

-- One row per alert episode: a (rule, subject) going from ok to firing opens it, going back
-- closes it (resolved_at). `notified` is false when the cooldown suppressed the notification.
create table alerts.alert_events (
    alert_id uuid primary key,
    rule_id text not null,
    rule_type text not null,
    subject text not null,
    severity text not null check (severity in ('info', 'warning', 'critical')),
    fired_at timestamptz not null,
    observed_at timestamptz,
    value double precision,
    threshold double precision,
    message text not null,
    details jsonb not null default '{}'::jsonb,
    evaluated_by text not null,
    notified boolean not null,
    suppressed_reason text,
    resolved_at timestamptz,
    resolved_value double precision,
    resolution text,
    check (resolved_at is null or resolved_at >= fired_at),
    check (notified or suppressed_reason is not null)
);
-- De-duplication held by the database: at most one open episode per rule and subject, whoever
-- evaluates (the Airflow task, the stream, the CLI) and however often.
create unique index alert_events_one_open_episode
    on alerts.alert_events (rule_id, subject) where resolved_at is null;
create index alert_events_fired_at on alerts.alert_events (fired_at desc);

-- The current state of every (rule, subject) the engine has evaluated.
create table alerts.rule_state (
    rule_id text not null,
    subject text not null,
    rule_type text not null,
    status text not null check (status in ('ok', 'firing', 'no_data', 'error')),
    since timestamptz not null,
    evaluated_at timestamptz not null,
    -- the data time of the last observation applied: an older observation (gold's daily close
    -- after the stream's last minute) never overrides a newer one
    observed_at timestamptz,
    value double precision,
    threshold double precision,
    message text,
    evaluated_by text not null,
    open_alert_id uuid references alerts.alert_events (alert_id),
    last_notified_at timestamptz,
    primary key (rule_id, subject)
);

-- The outbox: one row per alert and channel, written in the same transaction as the alert, so a
-- failing channel loses nothing. Pending rows are retried with capped backoff until delivered.
create table alerts.deliveries (
    alert_id uuid not null references alerts.alert_events (alert_id) on delete cascade,
    channel text not null check (channel in ('email', 'webhook')),
    status text not null default 'pending' check (status in ('pending', 'delivered')),
    attempts integer not null default 0 check (attempts >= 0),
    created_at timestamptz not null default now(),
    next_attempt_at timestamptz not null default now(),
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    last_error text,
    primary key (alert_id, channel),
    check ((status = 'delivered') = (delivered_at is not null))
);
create index deliveries_due on alerts.deliveries (next_attempt_at) where status = 'pending';

-- One row per stream (feed x interval), rewritten every few seconds by the stream process.
create table stream.heartbeat (
    stream_id text primary key,
    feed text not null check (feed in ('binance', 'synthetic')),
    source_api text not null,
    interval text not null,
    symbols text[] not null,
    status text not null check (
        status in ('starting', 'connecting', 'connected', 'reconnecting', 'unreachable', 'stopped')
    ),
    host text,
    pid integer,
    hostname text,
    started_at timestamptz not null,
    connected_since timestamptz,
    last_message_at timestamptz,
    last_candle_at timestamptz,
    last_landed_at timestamptz,
    last_candle_lag_seconds double precision,
    messages_received bigint not null default 0,
    candles_landed bigint not null default 0,
    duplicate_candles bigint not null default 0,
    malformed_messages bigint not null default 0,
    backfilled_candles bigint not null default 0,
    pending_backfills integer not null default 0,
    reconnects integer not null default 0,
    consecutive_failures integer not null default 0,
    next_retry_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    updated_at timestamptz not null
);

-- The newest closed candle landed per stream and token (what the data-health page lists).
create table stream.symbol_heartbeat (
    stream_id text not null references stream.heartbeat (stream_id) on delete cascade,
    symbol text not null,
    last_candle_at timestamptz not null,
    last_close double precision not null,
    last_landed_at timestamptz not null,
    primary key (stream_id, symbol)
);
