{#-
    SMA 20/50/200, EMA 12/26, RSI 14 (Wilder), MACD 12/26/9 and Bollinger 20/2 per candle of
    crypto_prices_cleaned, over the candles in order (a gap is not bridged: the previous candle
    is the previous one that exists). Warm-up rows are null.

    Incremental: for each (symbol, interval) with candles of crypto_prices_cleaned newer than the
    watermark, or with a bronze candle corrected or deleted since (bronze.price_changes), the
    stored rows from the earliest such candle on are removed (pre-hook delete_changed_ranges,
    macros/bronze_changes.sql) and recomputed: rolling windows with the 199 closes before it as
    context, the recursive states (EMA 12/26, MACD signal, RSI average gain/loss, stored in the
    `_*_state` columns) and the candle count continuing from the last stored candle before it.
    A deleted candle thus leaves this table and the candles after it are counted and smoothed
    without it. The same float operations run in the same order as in a full refresh, so the two
    are equal exactly.

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

{%- set longest_window = 200 %}

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
        _last_ingested_at
    from {{ ref('crypto_prices_cleaned') }}

),

{% if is_incremental() %}

changed as (

    {{ changed_or_deleted_partitions(ref('crypto_prices_cleaned')) }}

),

-- Recursion state of the last stored candle before each changed range (none for a new series).
seed as (

    select
        changed.symbol,
        changed.interval,
        stored.candle_number as seed_candle_number,
        stored._ema_12_state as seed_ema_12,
        stored._ema_26_state as seed_ema_26,
        stored._macd_signal_state as seed_macd_signal,
        stored._rsi_avg_gain as seed_rsi_avg_gain,
        stored._rsi_avg_loss as seed_rsi_avg_loss
    from changed
    left join lateral (
        select this_model.*
        from {{ this }} as this_model
        where this_model.symbol = changed.symbol
            and this_model.interval = changed.interval
            and this_model."timestamp" < changed.changed_from
        order by this_model."timestamp" desc
        limit 1
    ) as stored on true

),

-- The closes before each changed range that the longest rolling window (SMA 200) reaches.
context as (

    select
        stored.symbol,
        stored.interval,
        stored."timestamp",
        stored.close,
        stored._last_ingested_at,
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
        prices.symbol,
        prices.interval,
        prices."timestamp",
        prices.close,
        prices._last_ingested_at,
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
        null::text as symbol,
        null::text as interval,
        null::bigint as seed_candle_number,
        null::double precision as seed_ema_12,
        null::double precision as seed_ema_26,
        null::double precision as seed_macd_signal,
        null::double precision as seed_rsi_avg_gain,
        null::double precision as seed_rsi_avg_loss
    where false

),

series as (

    select
        *,
        false as is_context
    from prices

),

{% endif %}

rolling as (

    select
        *,
        close - lag(close) over (partition by symbol, interval order by "timestamp") as price_change,
        {{ rolling_mean('close', 20) }} as sma_20,
        {{ rolling_mean('close', 50) }} as sma_50,
        {{ rolling_mean('close', 200) }} as sma_200,
        {{ rolling_stddev_pop('close', 20) }} as bb_stddev
    from series

),

-- From here on only the candles being written; windows below run over them alone, continued
-- from the seed. `ta` counts the first candle's missing change as 0 gain and 0 loss.
gains as (

    select
        rolling.*,
        coalesce(seed.seed_candle_number, 0)
            + row_number() over (partition by rolling.symbol, rolling.interval order by rolling."timestamp")
            as candle_number,
        greatest(coalesce(rolling.price_change, 0), 0) as gain,
        greatest(-coalesce(rolling.price_change, 0), 0) as loss,
        seed.seed_ema_12,
        seed.seed_ema_26,
        seed.seed_macd_signal,
        seed.seed_rsi_avg_gain,
        seed.seed_rsi_avg_loss
    from rolling
    left join seed
        on rolling.symbol = seed.symbol
        and rolling.interval = seed.interval
    where not rolling.is_context

),

states as (

    select
        *,
        {{ ema_state('close', 12, seed='seed_ema_12') }} as _ema_12_state,
        {{ ema_state('close', 26, seed='seed_ema_26') }} as _ema_26_state,
        {{ wilder_state('gain', 14, seed='seed_rsi_avg_gain') }} as _rsi_avg_gain,
        {{ wilder_state('loss', 14, seed='seed_rsi_avg_loss') }} as _rsi_avg_loss
    from gains

),

macd as (

    select
        *,
        {{ after_warm_up('_ema_12_state - _ema_26_state', 'candle_number', 26) }} as macd_line
    from states

),

macd_signal as (

    select
        *,
        {{ ema_state('macd_line', 9, seed='seed_macd_signal') }} as _macd_signal_state
    from macd

),

indicators as (

    select
        symbol,
        interval,
        "timestamp",
        close,
        candle_number,
        sma_20,
        sma_50,
        sma_200,
        {{ after_warm_up('_ema_12_state', 'candle_number', 12) }} as ema_12,
        {{ after_warm_up('_ema_26_state', 'candle_number', 26) }} as ema_26,
        {{ after_warm_up(rsi('_rsi_avg_gain', '_rsi_avg_loss'), 'candle_number', 14) }} as rsi_14,
        macd_line,
        {{ after_warm_up('_macd_signal_state', 'candle_number', 26 + 9 - 1) }} as macd_signal,
        sma_20 + 2 * bb_stddev as bb_upper,
        sma_20 as bb_middle,
        sma_20 - 2 * bb_stddev as bb_lower,
        _ema_12_state,
        _ema_26_state,
        _macd_signal_state,
        _rsi_avg_gain,
        _rsi_avg_loss,
        _last_ingested_at
    from macd_signal

),

final as (

    select
        symbol,
        interval,
        "timestamp",
        close,
        candle_number,
        sma_20,
        sma_50,
        sma_200,
        ema_12,
        ema_26,
        rsi_14,
        macd_line,
        macd_signal,
        macd_line - macd_signal as macd_histogram,
        bb_upper,
        bb_middle,
        bb_lower,
        {{ bollinger_percent_b('close', 'bb_upper', 'bb_lower') }} as bb_percent_b,
        {{ bollinger_bandwidth('bb_upper', 'bb_lower', 'bb_middle') }} as bb_bandwidth,
        _ema_12_state,
        _ema_26_state,
        _macd_signal_state,
        _rsi_avg_gain,
        _rsi_avg_loss,
        _last_ingested_at,
        {{ built_at() }} as _built_at
    from indicators

)

select * from final
