{#-
    One row per token of the universe (tokens without candles included, so a silent token shows):
    its latest price and the change over the 24 hours before it, from the candle series that
    reaches latest (the finest one on a tie, so the 24-hour high/low/volume are as exact as the
    data allows). The reference price is the close of the newest candle closing at least 24 hours
    before the latest close; when a gap leaves none at exactly 24 hours, change_window_hours says
    how long the change really spans (never silently a different window). Market cap is the
    newest snapshot daily_crypto_metrics has for the token.

    A table rebuilt by every gold run: 266 index probes (38 tokens x 7 intervals) instead of a
    scan of silver on each page view.
-#}
{{ config(materialized='table') }}

with

universe as (

    select symbol, name, category, is_stablecoin
    from {{ ref('token_universe') }}

),

intervals as (

    select interval, {{ interval_seconds('interval') }} as interval_seconds
    from (values ('1m'), ('5m'), ('15m'), ('30m'), ('1h'), ('4h'), ('1d')) as known (interval)

),

latest_per_series as (

    select
        universe.symbol,
        intervals.interval,
        intervals.interval_seconds,
        newest."timestamp",
        newest.close,
        newest."timestamp" + intervals.interval_seconds * interval '1 second' as close_time
    from universe
    cross join intervals
    cross join lateral (
        select candles."timestamp", candles.close
        from {{ ref('crypto_prices_cleaned') }} as candles
        where candles.symbol = universe.symbol
            and candles.interval = intervals.interval
        order by candles."timestamp" desc
        limit 1
    ) as newest

),

latest as (

    select distinct on (symbol) *
    from latest_per_series
    order by symbol, close_time desc, interval_seconds asc

),

with_reference as (

    select
        latest.*,
        reference.close as reference_close,
        reference.close_time as reference_close_time
    from latest
    left join lateral (
        select
            candles.close,
            candles."timestamp" + latest.interval_seconds * interval '1 second' as close_time
        from {{ ref('crypto_prices_cleaned') }} as candles
        where candles.symbol = latest.symbol
            and candles.interval = latest.interval
            and candles."timestamp"
                <= latest.close_time - interval '24 hours'
                    - latest.interval_seconds * interval '1 second'
        order by candles."timestamp" desc
        limit 1
    ) as reference on true

),

last_24h as (

    -- the candles that closed within the 24 hours ending at the latest close
    select
        with_reference.symbol,
        max(candles.high) as high_24h,
        min(candles.low) as low_24h,
        sum(candles.volume) as volume_24h,
        case
            when count(candles.quote_volume) = count(*) then sum(candles.quote_volume)
        end as quote_volume_24h,
        count(*) as candles_24h
    from with_reference
    inner join {{ ref('crypto_prices_cleaned') }} as candles
        on candles.symbol = with_reference.symbol
        and candles.interval = with_reference.interval
        and candles."timestamp"
            > with_reference.close_time - interval '24 hours'
                - with_reference.interval_seconds * interval '1 second'
    group by with_reference.symbol

),

market as (

    select distinct on (symbol)
        symbol,
        market_cap,
        date as market_cap_date
    from {{ ref('daily_crypto_metrics') }}
    where market_cap is not null
    order by symbol, date desc

),

final as (

    select
        universe.symbol,
        universe.name,
        universe.category,
        universe.is_stablecoin,
        with_reference.interval as source_interval,
        with_reference."timestamp" as latest_candle_at,
        with_reference.close_time as price_at,
        with_reference.close as price,
        with_reference.reference_close_time as reference_at,
        with_reference.reference_close as reference_price,
        with_reference.close / with_reference.reference_close - 1 as change_24h,
        extract(
            epoch from with_reference.close_time - with_reference.reference_close_time
        )::double precision / 3600 as change_window_hours,
        last_24h.high_24h,
        last_24h.low_24h,
        last_24h.volume_24h,
        last_24h.quote_volume_24h,
        last_24h.candles_24h,
        market.market_cap,
        market.market_cap_date,
        {{ built_at() }} as _built_at
    from universe
    left join with_reference
        on universe.symbol = with_reference.symbol
    left join last_24h
        on universe.symbol = last_24h.symbol
    left join market
        on universe.symbol = market.symbol

)

select * from final
