-- Bronze records that stay true: replays audited on their own rows, quarantine without repeats,
-- and a change log so corrections and deletions in bronze reach silver.

-- A reload of a batch that already landed (a replay from the lake, a cleared Airflow task) gets
-- an audit row of its own pointing at the original, instead of overwriting the original's counts:
-- summed over the audit table, rows_inserted equals what bronze holds.
alter table bronze.ingestion_audit
    add column if not exists replay_of uuid references bronze.ingestion_audit (batch_id);
create index if not exists ingestion_audit_replay_of
    on bronze.ingestion_audit (replay_of) where replay_of is not null;

-- A rejected row is evidence, kept once: the same row of the same source and dataset, received
-- again (a replay, an overlapping window), is not stored twice. Earlier repeats are removed
-- (the first one, with its original batch and payload pointer, is kept).
delete from bronze.quarantine q
using bronze.quarantine first_copy
where q.source_api = first_copy.source_api
    and q.dataset = first_copy.dataset
    and md5(q.row_data::text) = md5(first_copy.row_data::text)
    and q.quarantine_id > first_copy.quarantine_id;
create unique index if not exists quarantine_row_once
    on bronze.quarantine (source_api, dataset, md5(row_data::text));

-- Corrections and deletions of candles after they landed (by hand, or a fix applied to bronze).
-- The loader only inserts, so these triggers cost nothing on the load path.
--   update: the row is stamped as ingested again (_ingested_at = now()), so incremental silver
--           recomputes from it like any newly landed row;
--   update or delete: the old key is logged here, so silver recomputes the series from that
--           candle on and drops candles that no longer exist in bronze.
create table if not exists bronze.price_changes (
    change_id   bigserial primary key,
    source_api  text not null,
    symbol      text not null,
    interval    text not null,
    "timestamp" timestamptz not null,
    change      text not null check (change in ('update', 'delete')),
    changed_at  timestamptz not null default now()
);
create index if not exists price_changes_changed_at on bronze.price_changes (changed_at);

create or replace function bronze.stamp_corrected_price() returns trigger
language plpgsql as $$
begin
    new._ingested_at := now();
    return new;
end;
$$;

create or replace function bronze.log_price_changes() returns trigger
language plpgsql as $$
begin
    insert into bronze.price_changes (source_api, symbol, interval, "timestamp", change)
    select source_api, symbol, interval, "timestamp", lower(tg_op)
    from old_rows;
    return null;
end;
$$;

drop trigger if exists raw_crypto_prices_stamp_corrected on bronze.raw_crypto_prices;
create trigger raw_crypto_prices_stamp_corrected
    before update on bronze.raw_crypto_prices
    for each row execute function bronze.stamp_corrected_price();

drop trigger if exists raw_crypto_prices_log_updates on bronze.raw_crypto_prices;
create trigger raw_crypto_prices_log_updates
    after update on bronze.raw_crypto_prices
    referencing old table as old_rows
    for each statement execute function bronze.log_price_changes();

drop trigger if exists raw_crypto_prices_log_deletes on bronze.raw_crypto_prices;
create trigger raw_crypto_prices_log_deletes
    after delete on bronze.raw_crypto_prices
    referencing old table as old_rows
    for each statement execute function bronze.log_price_changes();
