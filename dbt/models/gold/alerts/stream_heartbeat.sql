{#- The real-time stream's health as the data-health page shows it: the heartbeat row plus ages
    computed at read time (a view, so "seconds since" is always now). `health`: stopped (the
    process said so), down (no heartbeat for var stream_heartbeat_stale_seconds: the process died
    or cannot reach the warehouse), unreachable/reconnecting (the venue), lagging (the newest
    candle closed more than var stream_lag_warn_seconds ago), else live. -#}
{{ config(materialized='view') }}

{%- set heartbeat_stale = var('stream_heartbeat_stale_seconds', 120) %}
{%- set lag_warn = var('stream_lag_warn_seconds', 180) %}

with

heartbeat as (

    select * from {{ source('stream', 'heartbeat') }}

),

aged as (

    select
        *,
        last_candle_at + {{ interval_seconds('interval') }} * interval '1 second'
            as last_candle_close_at,
        extract(epoch from now() - updated_at) as seconds_since_heartbeat,
        extract(epoch from now() - last_message_at) as seconds_since_last_message,
        extract(epoch from now() - (last_candle_at
            + {{ interval_seconds('interval') }} * interval '1 second')) as seconds_since_last_candle_close
    from heartbeat

),

final as (

    select
        stream_id,
        feed,
        source_api,
        interval,
        symbols,
        case
            when status = 'stopped' then 'stopped'
            when seconds_since_heartbeat > {{ heartbeat_stale }} then 'down'
            when status in ('unreachable', 'reconnecting', 'connecting', 'starting') then status
            when last_candle_at is null
                or seconds_since_last_candle_close > {{ lag_warn }} then 'lagging'
            else 'live'
        end as health,
        status,
        host,
        pid,
        hostname,
        started_at,
        connected_since,
        last_message_at,
        seconds_since_last_message,
        last_candle_at,
        last_candle_close_at,
        seconds_since_last_candle_close,
        last_landed_at,
        last_candle_lag_seconds,
        messages_received,
        candles_landed,
        duplicate_candles,
        malformed_messages,
        backfilled_candles,
        pending_backfills,
        reconnects,
        consecutive_failures,
        next_retry_at,
        last_error,
        last_error_at,
        updated_at,
        seconds_since_heartbeat
    from aged

)

select * from final
