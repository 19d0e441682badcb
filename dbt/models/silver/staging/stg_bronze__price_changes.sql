-- Candles corrected or deleted in bronze after they landed (bronze.price_changes, written by
-- triggers): silver recomputes each series from the changed candle on (macros/bronze_changes.sql).
with

source as (

    select * from {{ source('bronze', 'price_changes') }}

),

renamed as (

    select
        change_id,
        lower(source_api) as source_api,
        upper(symbol) as symbol,
        interval,
        "timestamp",
        change,
        changed_at
    from source

),

final as (

    select * from renamed

)

select * from final
