-- Market snapshots (CoinGecko): price, market cap, supply and 24h volume per token and time.
with

source as (

    select * from {{ source('bronze', 'raw_market_data') }}

),

renamed as (

    select
        "timestamp",
        upper(symbol) as symbol,
        price::double precision as price,
        market_cap::double precision as market_cap,
        circulating_supply::double precision as circulating_supply,
        total_volume::double precision as total_volume,
        upper(quote_currency) as quote_currency,
        lower(source_api) as source_api,
        _batch_id,
        _ingested_at
    from source

),

final as (

    select * from renamed

)

select * from final
