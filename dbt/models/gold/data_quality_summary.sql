{#-
    One row per token of the universe (tokens with no data included, so a silent source shows
    up): how fresh its candles are, how many gaps and outliers silver flagged, how many of its
    rows ingestion quarantined, and how far CoinGecko's price is from the exchange close at the
    same instant. Rebuilt on every run: `measured_at` and `age_hours` are as of the build. Its
    cost follows the universe, not the years of candles: everything is read through indexes
    (see below), about 0.15 s at 10x today's history.
-#}
{{ config(materialized='table') }}

{%- set stale_after_hours = var('gold_stale_after_hours', 48) %}
{%- set deviation_days = var('gold_deviation_window_days', 30) %}

with

universe as (

    select symbol, name, category, is_stablecoin, status
    from {{ ref('token_universe') }}

),

-- Cost follows the universe, not history: each series' newest candle and its candle count come
-- from one probe of technical_indicators' (symbol, interval, timestamp) index (its
-- candle_number counts the series' silver candles up to that one: one indicator row per
-- candle), and gaps and outliers, which are rare, from silver's partial index of flagged
-- candles (crypto_prices_cleaned's post-hook). `offset 0` keeps each probe a look-up per series.
candle_series as (

    select
        universe.symbol,
        intervals.interval,
        newest."timestamp" as latest_candle_at,
        newest."timestamp" + {{ interval_seconds('intervals.interval') }} * interval '1 second'
            as latest_close_at,
        newest.candle_number as candle_count
    from universe
    cross join {{ candle_intervals_values() }}
    cross join lateral (
        select indicators."timestamp", indicators.candle_number
        from {{ ref('technical_indicators') }} as indicators
        where indicators.symbol = universe.symbol
            and indicators.interval = intervals.interval
        order by indicators."timestamp" desc
        limit 1
        offset 0
    ) as newest

),

flagged_series as (

    select
        symbol,
        interval,
        count(*) filter (where has_gap) as gap_count,
        coalesce(sum(gap_candles) filter (where has_gap), 0) as missing_candles,
        count(*) filter (where is_outlier) as outlier_count
    from {{ ref('crypto_prices_cleaned') }}
    where has_gap or is_outlier
    group by symbol, interval

),

candles as (

    select
        candle_series.symbol,
        max(candle_series.latest_candle_at) as latest_candle_at,
        max(candle_series.latest_close_at) as latest_close_at,
        sum(candle_series.candle_count) as candle_count,
        string_agg(candle_series.interval, ',' order by candle_series.interval) as intervals,
        coalesce(sum(flagged_series.gap_count), 0) as gap_count,
        coalesce(sum(flagged_series.missing_candles), 0) as missing_candles,
        coalesce(sum(flagged_series.outlier_count), 0) as outlier_count
    from candle_series
    left join flagged_series
        on candle_series.symbol = flagged_series.symbol
        and candle_series.interval = flagged_series.interval
    group by candle_series.symbol

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

-- Each token's newest comparison, then the window before it, both through daily_crypto_metrics'
-- (symbol, date) index.
latest_deviation as (

    select
        universe.symbol,
        latest.date as latest_deviation_date,
        latest.market_price_deviation_bp as latest_deviation_bp
    from universe
    cross join lateral (
        select metrics.date, metrics.market_price_deviation_bp
        from {{ ref('daily_crypto_metrics') }} as metrics
        where metrics.symbol = universe.symbol
            and metrics.market_price_deviation_bp is not null
        order by metrics.date desc
        limit 1
        offset 0
    ) as latest

),

recent_deviation as (

    -- the window ends at each token's latest comparison, not at today
    select
        latest_deviation.symbol,
        max(abs(recent.market_price_deviation_bp)) as max_abs_deviation_bp_30d,
        count(*) as deviation_days_30d
    from latest_deviation
    cross join lateral (
        select metrics.market_price_deviation_bp
        from {{ ref('daily_crypto_metrics') }} as metrics
        where metrics.symbol = latest_deviation.symbol
            and metrics.date > latest_deviation.latest_deviation_date - {{ deviation_days }}
            and metrics.market_price_deviation_bp is not null
        offset 0
    ) as recent
    group by latest_deviation.symbol

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
