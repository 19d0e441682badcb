{#-
    Each run of missing candles silver flagged, as a time span: from the close of the candle
    before the gap to the open of the candle after it, and how many candles never came. Gaps are
    shown, never filled. A view over silver's has_gap flag.
-#}
{{ config(materialized='view') }}

with

flagged as (

    select symbol, interval, "timestamp", gap_candles, source_api
    from {{ ref('crypto_prices_cleaned') }}
    where has_gap

),

final as (

    select
        symbol,
        interval,
        "timestamp" - gap_candles * {{ interval_seconds('interval') }} * interval '1 second'
            as gap_start,
        "timestamp" as gap_end,
        gap_candles as missing_candles,
        source_api as resumed_from_source
    from flagged

)

select * from final
