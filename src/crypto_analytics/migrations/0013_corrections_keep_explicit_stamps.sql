-- A correction re-stamps the row as ingested now (so incremental silver picks it up) unless the
-- update sets _ingested_at itself: a backfilled ingestion time, or a test ageing rows on purpose,
-- must be kept as given.
create or replace function bronze.stamp_corrected_price() returns trigger
language plpgsql as $$
begin
    if new._ingested_at is not distinct from old._ingested_at then
        new._ingested_at := now();
    end if;
    return new;
end;
$$;
