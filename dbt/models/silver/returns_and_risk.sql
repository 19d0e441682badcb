{#-
    Returns, annualised rolling volatility and drawdown per candle of crypto_prices_cleaned.
    Volatility is the sample standard deviation of the last N log returns (current included)
    times sqrt(candles per year), 365-day years. Cumulative figures run from the first candle of
    the (symbol, interval) series.

    Incremental: for each (symbol, interval) with candles of crypto_prices_cleaned newer than the
    watermark, or with a bronze candle corrected or deleted since (bronze.price_changes), the
    stored rows from the earliest such candle on are removed (pre-hook delete_changed_ranges,
    macros/bronze_changes.sql) and recomputed; the 89 candles before it are the volatility
    windows' context, and the running peak and maximum drawdown continue from the last stored
    candle before it (max/min are exact), so this equals a full refresh exactly, deletions
    included (a deleted first candle moves the base of the cumulative return: then the whole
    series is recomputed).

    `_built_at` (start of the dbt invocation that wrote the row) scopes the scheduled builds'
    data tests to rows no passing run has tested (macros/tests/untested_rows.sql).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'interval', 'timestamp'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['symbol', 'interval', 'timestamp'], 'unique': True},
            {'columns': ['_last_ingested_at']},
            {'columns': ['_built_at']},
        ],
        pre_hook=[
            "{{ delete_changed_ranges(changed_or_deleted_partitions(ref('crypto_prices_cleaned'))) }}"
        ],
        post_hook=["{{ analyze_watermark_columns_once() }}"],
    )
}}

{%- set longest_window = 90 %}

-- bronze's change log, read by the pre-hook and the incremental branch (macros/bronze_changes.sql)
-- depends_on: {{ ref('stg_bronze__price_changes') }}

with

-- `not materialized`: referenced several times, and each use must reach the model's index.
prices as not materialized (

    select
        symbol,
        interval,
        "timestamp",
        close,
        pct_change,
        log_return,
        _last_ingested_at
    from {{ ref('crypto_prices_cleaned') }}

),

{% if is_incremental() %}

changed as (

    {{ changed_or_deleted_partitions(ref('crypto_prices_cleaned')) }}

),

-- Running figures of the last stored candle before each changed range, and the series' first
-- close (the base of the cumulative return). Materialized: one look-up per series, not per row.
seed as materialized (

    select
        changed.symbol,
        changed.interval,
        stored.running_peak as seed_running_peak,
        stored.max_drawdown as seed_max_drawdown,
        first_candle.close as first_close
    from changed
    left join lateral (
        select this_model.running_peak, this_model.max_drawdown
        from {{ this }} as this_model
        where this_model.symbol = changed.symbol
            and this_model.interval = changed.interval
            and this_model."timestamp" < changed.changed_from
        order by this_model."timestamp" desc
        limit 1
    ) as stored on true
    cross join lateral (
        select prices.close
        from prices
        where prices.symbol = changed.symbol
            and prices.interval = changed.interval
        order by prices."timestamp"
        limit 1
    ) as first_candle

),

context as (

    select
        stored.*,
        true as is_context
    from changed
    cross join lateral (
        select prices.*
        from prices
        where prices.symbol = changed.symbol
            and prices.interval = changed.interval
            and prices."timestamp" < changed.changed_from
        order by prices."timestamp" desc
        limit {{ longest_window - 1 }}
    ) as stored

),

series as (

    select
        prices.*,
        false as is_context
    from prices
    inner join changed
        on prices.symbol = changed.symbol
        and prices.interval = changed.interval
        and prices."timestamp" >= changed.changed_from
    union all
    select * from context

),

{% else %}

seed as (

    select
        symbol,
        interval,
        null::double precision as seed_running_peak,
        null::double precision as seed_max_drawdown,
        close as first_close
    from (
        select
            symbol,
            interval,
            close,
            row_number() over (partition by symbol, interval order by "timestamp") as candle_number
        from prices
    ) as numbered
    where candle_number = 1

),

series as (

    select
        *,
        false as is_context
    from prices

),

{% endif %}

volatility as (

    select
        *,
        {{ annualised_volatility('log_return', 30) }} as volatility_30,
        {{ annualised_volatility('log_return', 60) }} as volatility_60,
        {{ annualised_volatility('log_return', 90) }} as volatility_90
    from series

),

-- From here on only the candles being written.
peaks as (

    select
        volatility.*,
        volatility.close / seed.first_close - 1 as cumulative_return,
        greatest(
            seed.seed_running_peak,
            max(volatility.close) over (
                partition by volatility.symbol, volatility.interval
                order by volatility."timestamp"
                rows between unbounded preceding and current row
            )
        ) as running_peak,
        seed.seed_max_drawdown
    from volatility
    inner join seed
        on volatility.symbol = seed.symbol
        and volatility.interval = seed.interval
    where not volatility.is_context

),

drawdowns as (

    select
        *,
        close / running_peak - 1 as drawdown
    from peaks

),

final as (

    select
        symbol,
        interval,
        "timestamp",
        close,
        pct_change as simple_return,
        log_return,
        volatility_30,
        volatility_60,
        volatility_90,
        cumulative_return,
        running_peak,
        drawdown,
        least(
            seed_max_drawdown,
            min(drawdown) over (
                partition by symbol, interval
                order by "timestamp"
                rows between unbounded preceding and current row
            )
        ) as max_drawdown,
        _last_ingested_at,
        {{ built_at() }} as _built_at
    from drawdowns

)

select * from final
