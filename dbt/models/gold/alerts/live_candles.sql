{#- The real-time stream's closed candles of the last 24 hours (1-minute candles as they land,
    from the stream's own source: binance, or synthetic offline), for a live chart that moves
    every minute, before silver and gold are rebuilt. Read through silver's staging view of
    bronze (typed, renamed), limited by landing time so the bronze BRIN on _ingested_at keeps it
    cheap. A view: a candle is here the moment the stream commits it. Raw: no source
    precedence, outlier or gap flags (crypto_prices_cleaned adds those at the next build). -#}
{{ config(materialized='view') }}

with

streams as (

    select distinct source_api, interval from {{ source('stream', 'heartbeat') }}

),

candles as (

    select * from {{ ref('stg_bronze__crypto_prices') }}
    where _ingested_at >= now() - interval '25 hours'
        and "timestamp" >= now() - interval '24 hours'

),

final as (

    select
        candles.source_api,
        candles.symbol,
        candles.interval,
        candles."timestamp",
        candles."timestamp" + {{ interval_seconds('candles.interval') }} * interval '1 second'
            as close_time,
        candles.open,
        candles.high,
        candles.low,
        candles.close,
        candles.volume,
        candles.quote_volume,
        candles.quote_currency,
        candles._ingested_at as landed_at
    from candles
    inner join streams
        on streams.source_api = candles.source_api and streams.interval = candles.interval

)

select * from final
