{#- The newest candle the stream landed per token, and how far behind it is now (a view). -#}
{{ config(materialized='view') }}

with

symbols as (

    select * from {{ source('stream', 'symbol_heartbeat') }}

),

heartbeat as (

    select stream_id, feed, source_api, interval from {{ source('stream', 'heartbeat') }}

),

final as (

    select
        symbols.stream_id,
        heartbeat.feed,
        heartbeat.source_api,
        heartbeat.interval,
        symbols.symbol,
        symbols.last_candle_at,
        symbols.last_close,
        symbols.last_landed_at,
        extract(epoch from now() - (symbols.last_candle_at
            + {{ interval_seconds('heartbeat.interval') }} * interval '1 second')) / 60.0
            as minutes_since_last_close
    from symbols
    inner join heartbeat on heartbeat.stream_id = symbols.stream_id

)

select * from final
