-- The configured token universe, for joins (category, stablecoin flag, lifecycle status).
with

source as (

    select * from {{ source('bronze', 'token_universe') }}

),

renamed as (

    select
        symbol,
        name,
        category,
        is_stablecoin,
        status,
        yahoo_ticker,
        coingecko_id,
        exchange_pair,
        unavailable,
        updated_at
    from source

),

final as (

    select * from renamed

)

select * from final
