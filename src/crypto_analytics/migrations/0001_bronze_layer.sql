-- Bronze layer: raw, source-faithful tables plus the lineage needed to audit every row.
-- Timestamps are UTC candle open times (timestamptz). Prices are double precision: PEPE trades
-- near 1e-6 and double keeps 15 significant digits while COPY stays fast.

create schema if not exists bronze;
create schema if not exists silver;
create schema if not exists gold;

-- One row per batch: what was asked, what arrived, what landed, and why it failed if it did.
create table if not exists bronze.ingestion_audit (
    batch_id           uuid primary key,
    source_api         text not null,
    dataset            text not null check (dataset in ('ohlcv', 'market', 'orderbook')),
    symbols            text[] not null,
    interval           text,
    window_start       timestamptz,
    window_end         timestamptz,
    rows_fetched       integer not null default 0,
    rows_inserted      integer not null default 0,
    rows_duplicate     integer not null default 0,
    rows_quarantined   integer not null default 0,
    status             text not null
        check (status in ('running', 'succeeded', 'partial', 'failed', 'skipped')),
    error              text,
    lake_paths         text[] not null default '{}',
    started_at         timestamptz not null default now(),
    finished_at        timestamptz
);
create index if not exists ingestion_audit_source_started
    on bronze.ingestion_audit (source_api, started_at desc);

create table if not exists bronze.raw_crypto_prices (
    "timestamp"     timestamptz not null,
    symbol          text not null,
    interval        text not null,
    open            double precision not null,
    high            double precision not null,
    low             double precision not null,
    close           double precision not null,
    volume          double precision not null,
    quote_volume    double precision,
    quote_currency  text not null,
    source_api      text not null,
    _batch_id       uuid not null,
    _ingested_at    timestamptz not null default now(),
    constraint raw_crypto_prices_pk primary key (source_api, symbol, interval, "timestamp")
);
create index if not exists raw_crypto_prices_ingested on bronze.raw_crypto_prices (_ingested_at);

create table if not exists bronze.raw_market_data (
    "timestamp"         timestamptz not null,
    symbol              text not null,
    price               double precision not null,
    market_cap          double precision,
    circulating_supply  double precision,
    total_volume        double precision,
    quote_currency      text not null,
    source_api          text not null,
    _batch_id           uuid not null,
    _ingested_at        timestamptz not null default now(),
    constraint raw_market_data_pk primary key (source_api, symbol, "timestamp")
);
create index if not exists raw_market_data_ingested on bronze.raw_market_data (_ingested_at);

-- bids/asks are JSON arrays of [price, quantity] pairs, best first, top N levels.
create table if not exists bronze.raw_orderbook (
    "timestamp"     timestamptz not null,
    symbol          text not null,
    bids            jsonb not null,
    asks            jsonb not null,
    depth           integer not null,
    best_bid        double precision not null,
    best_ask        double precision not null,
    spread          double precision not null,
    mid             double precision not null,
    quote_currency  text not null,
    source_api      text not null,
    _batch_id       uuid not null,
    _ingested_at    timestamptz not null default now(),
    constraint raw_orderbook_pk primary key (source_api, symbol, "timestamp")
);

-- Rows that failed validation: the row as received, the readable reason, and where its payload is.
create table if not exists bronze.quarantine (
    quarantine_id     bigserial primary key,
    _batch_id         uuid not null,
    source_api        text not null,
    dataset           text not null,
    symbol            text,
    reason            text not null,
    row_data          jsonb not null,
    raw_payload_path  text,
    quarantined_at    timestamptz not null default now()
);
create index if not exists quarantine_batch on bronze.quarantine (_batch_id);

-- Incremental state: the newest timestamp landed per (source, dataset, symbol, interval).
-- interval is '' for datasets without candles (market data, order books).
create table if not exists bronze.watermarks (
    source_api      text not null,
    dataset         text not null,
    symbol          text not null,
    interval        text not null default '',
    last_timestamp  timestamptz not null,
    updated_at      timestamptz not null default now(),
    constraint watermarks_pk primary key (source_api, dataset, symbol, interval)
);

-- The token universe from config/config.yaml, rewritten on every `db init`, for dbt to join.
create table if not exists bronze.token_universe (
    symbol          text primary key,
    name            text not null,
    category        text not null,
    is_stablecoin   boolean not null,
    status          text not null,
    yahoo_ticker    text,
    coingecko_id    text,
    exchange_pair   text,
    unavailable     jsonb not null default '{}',
    updated_at      timestamptz not null default now()
);
