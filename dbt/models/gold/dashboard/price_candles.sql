{#-
    Candles of every interval silver has (15m, 1h, 1d, ... as the sources deliver them), with the
    volume-weighted average price of the candle's UTC day so far: the session VWAP traders read
    on intraday charts, restarting at 00:00 UTC. A daily candle's VWAP is its day's VWAP from
    daily_crypto_metrics (built from the finest interval covering the day), not the daily
    candle's own typical price. Gaps are not filled: has_gap/gap_candles say where candles are
    missing, and a session's VWAP covers only the candles that exist.

    A view: new silver candles are visible at once, and a query for one token and interval reads
    only that series through silver's (symbol, interval, timestamp) index.
-#}
{{ config(materialized='view') }}

with

candles as (

    select
        symbol,
        interval,
        "timestamp",
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        quote_currency,
        source_api,
        has_gap,
        gap_candles,
        is_outlier
    from {{ ref('crypto_prices_cleaned') }}

),

daily_vwap as (

    select symbol, date, vwap
    from {{ ref('daily_crypto_metrics') }}

),

sessions as (

    select
        candles.*,
        ("timestamp" at time zone 'UTC')::date as session_date,
        sum((high + low + close) / 3 * volume) over session_so_far as session_price_volume,
        sum(volume) over session_so_far as session_volume
    from candles
    window session_so_far as (
        partition by symbol, interval, ("timestamp" at time zone 'UTC')::date
        order by "timestamp"
        rows between unbounded preceding and current row
    )

),

final as (

    select
        sessions.symbol,
        sessions.interval,
        sessions."timestamp",
        sessions."timestamp" + {{ interval_seconds('sessions.interval') }} * interval '1 second'
            as close_time,
        sessions.open,
        sessions.high,
        sessions.low,
        sessions.close,
        sessions.volume,
        sessions.quote_volume,
        sessions.quote_currency,
        sessions.source_api,
        case
            when sessions.interval = '1d' then daily_vwap.vwap
            else sessions.session_price_volume / nullif(sessions.session_volume, 0)
        end as vwap,
        sessions.session_date,
        sessions.has_gap,
        sessions.gap_candles,
        sessions.is_outlier
    from sessions
    left join daily_vwap
        on sessions.interval = '1d'
        and sessions.symbol = daily_vwap.symbol
        and sessions.session_date = daily_vwap.date

)

select * from final
