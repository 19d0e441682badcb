{#-
    One row per token of the universe (tokens with no data included, so a silent source shows
    up): how fresh its candles are, how many gaps and outliers silver flagged, how many of its
    rows ingestion quarantined, and how far CoinGecko's price is from the exchange close at the
    same instant. Rebuilt on every run: `measured_at` and `age_hours` are as of the build.
-#}
{{ config(materialized='table') }}

{%- set stale_after_hours = var('gold_stale_after_hours', 48) %}
{%- set deviation_days = var('gold_deviation_window_days', 30) %}

with

universe as (

    select symbol, name, category, is_stablecoin, status
    from {{ ref('token_universe') }}

),

candle_series as (

    select
        symbol,
        interval,
        max("timestamp") as latest_candle_at,
        max("timestamp") + {{ interval_seconds('interval') }} * interval '1 second'
            as latest_close_at,
        count(*) as candle_count,
        count(*) filter (where has_gap) as gap_count,
        coalesce(sum(gap_candles), 0) as missing_candles,
        count(*) filter (where is_outlier) as outlier_count
    from {{ ref('crypto_prices_cleaned') }}
    group by symbol, interval

),

candles as (

    select
        symbol,
        max(latest_candle_at) as latest_candle_at,
        max(latest_close_at) as latest_close_at,
        sum(candle_count) as candle_count,
        string_agg(interval, ',' order by interval) as intervals,
        sum(gap_count) as gap_count,
        sum(missing_candles) as missing_candles,
        sum(outlier_count) as outlier_count
    from candle_series
    group by symbol

),

quarantine as (

    select
        symbol,
        count(*) as quarantined_rows,
        max(quarantined_at) as latest_quarantined_at
    from {{ ref('stg_bronze__quarantine') }}
    where symbol is not null
    group by symbol

),

deviations as (

    select symbol, date, market_price_deviation_bp
    from {{ ref('daily_crypto_metrics') }}
    where market_price_deviation_bp is not null

),

latest_deviation as (

    select distinct on (symbol)
        symbol,
        date as latest_deviation_date,
        market_price_deviation_bp as latest_deviation_bp
    from deviations
    order by symbol, date desc

),

recent_deviation as (

    -- the window ends at each token's latest comparison, not at today
    select
        deviations.symbol,
        max(abs(deviations.market_price_deviation_bp)) as max_abs_deviation_bp_30d,
        count(*) as deviation_days_30d
    from deviations
    inner join latest_deviation
        on deviations.symbol = latest_deviation.symbol
    where deviations.date > latest_deviation.latest_deviation_date - {{ deviation_days }}
    group by deviations.symbol

),

final as (

    select
        universe.symbol,
        universe.name,
        universe.category,
        universe.is_stablecoin,
        universe.status,
        candles.intervals,
        coalesce(candles.candle_count, 0) as candle_count,
        candles.latest_candle_at,
        candles.latest_close_at,
        now() as measured_at,
        extract(epoch from now() - candles.latest_close_at)::double precision / 3600
            as age_hours,
        case
            when candles.latest_close_at is null then 'no_data'
            when now() - candles.latest_close_at > interval '{{ stale_after_hours }} hours'
                then 'stale'
            else 'fresh'
        end as freshness_status,
        coalesce(candles.gap_count, 0) as gap_count,
        coalesce(candles.missing_candles, 0) as missing_candles,
        coalesce(candles.outlier_count, 0) as outlier_count,
        coalesce(quarantine.quarantined_rows, 0) as quarantined_rows,
        quarantine.latest_quarantined_at,
        latest_deviation.latest_deviation_date,
        latest_deviation.latest_deviation_bp,
        recent_deviation.max_abs_deviation_bp_30d,
        coalesce(recent_deviation.deviation_days_30d, 0) as deviation_days_30d
    from universe
    left join candles
        on universe.symbol = candles.symbol
    left join quarantine
        on universe.symbol = quarantine.symbol
    left join latest_deviation
        on universe.symbol = latest_deviation.symbol
    left join recent_deviation
        on universe.symbol = recent_deviation.symbol

)

select * from final
