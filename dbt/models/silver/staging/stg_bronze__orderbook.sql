-- Top-of-book snapshots with spread in basis points of the mid price.
with

source as (

    select * from {{ source('bronze', 'raw_orderbook') }}

),

renamed as (

    select
        "timestamp",
        upper(symbol) as symbol,
        bids,
        asks,
        depth,
        best_bid,
        best_ask,
        spread,
        mid,
        case when mid > 0 then spread / mid * 10000 end as spread_bps,
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
