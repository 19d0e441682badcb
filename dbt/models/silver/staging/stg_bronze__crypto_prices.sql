-- Candles from every source, one row per (source_api, symbol, interval, timestamp), typed and
-- with the source's rank under var('source_precedence'). No deduplication here: choosing between
-- sources is crypto_prices_cleaned's job. Bronze stores the key normalised (upper-case symbols,
-- lower-case source ids: a check constraint, migration 0023), so the view passes it through
-- unchanged and bronze's primary key serves every look-up by key made through the view.
with

source as (

    select * from {{ source('bronze', 'raw_crypto_prices') }}

),

renamed as (

    select
        "timestamp",
        symbol,
        interval,
        open::double precision as open,
        high::double precision as high,
        low::double precision as low,
        close::double precision as close,
        volume::double precision as volume,
        quote_volume::double precision as quote_volume,
        upper(quote_currency) as quote_currency,
        source_api,
        {{ source_rank('source_api') }} as source_rank,
        _batch_id,
        _ingested_at
    from source

),

final as (

    select * from renamed

)

select * from final
