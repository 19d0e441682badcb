-- The sources bronze holds candles from, one row each, found by walking bronze's primary key
-- (source_api leads it): one index probe per source instead of reading every candle. The
-- incremental crypto_prices_cleaned reads a changed range once per source through that key.
-- Straight over the table: PostgreSQL answers min() from an index only on a plain table, not
-- through the staging view's CTEs.
with

walk as (

    {{ distinct_leading_values(source('bronze', 'raw_crypto_prices'), 'source_api') }}

),

final as (

    select source_api from walk

)

select * from final
