{#-
    One candle per (symbol, interval, timestamp): the preferred source's row (var
    'source_precedence'), with returns, gap and outlier flags. Gaps are flagged, never filled.

    Incremental: for each (symbol, interval) with bronze rows newer than the watermark, or with
    candles corrected or deleted in bronze since (bronze.price_changes), every candle from the
    earliest such timestamp on is removed (pre-hook delete_changed_ranges), re-chosen from all
    sources (read through bronze's primary key: its cost follows the changed ranges, not
    history) and recomputed; the `outlier_window + 1` stored candles before it are the context
    returns and the outlier window need. Everything here depends only on a candle and its
    predecessors, so this equals a full refresh exactly, deletions included. The candle after a
    deleted or corrected one carries the change's time in `_last_ingested_at`, so the models
    built on this one recompute from there too.

    `_built_at` (start of the dbt invocation that wrote the row) scopes the scheduled builds'
    data tests to rows no passing run has tested (macros/tests/untested_rows.sql). The partial
    index of flagged candles (has_gap or is_outlier) lets data_quality_summary count them
    without reading history.
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
            "{{ delete_changed_ranges(changed_or_deleted_partitions("
            "ref('stg_bronze__crypto_prices'), '_ingested_at')) }}"
        ],
        post_hook=[
            "{{ analyze_watermark_columns_once() }}",
            "{{ ensure_partial_index(['symbol', 'interval'], 'has_gap or is_outlier') }}",
        ],
    )
}}

-- read by incremental builds only: depends_on: {{ ref('stg_bronze__price_sources') }}

{%- set outlier_window = var('outlier_window') | int %}
{%- set outlier_k = var('outlier_k') %}

with

prices as (

    select * from {{ ref('stg_bronze__crypto_prices') }}

),

{% if is_incremental() %}

changed as (

    {{ changed_or_deleted_partitions(ref('stg_bronze__crypto_prices'), '_ingested_at') }}

),

sources as (

    select source_api from {{ ref('stg_bronze__price_sources') }}

),

-- Each changed range read once per source through bronze's primary key (source_api, symbol,
-- interval, timestamp). `offset 0` keeps the look-up a subquery run per range: flattened into a
-- join, the planner costs it by guesses (it cannot estimate the changed ranges or the sources)
-- and picks a hash join over all of bronze, whose cost grows with history.
candidates as (

    select range_rows.*
    from changed
    cross join sources
    cross join lateral (
        select prices.*
        from prices
        where prices.source_api = sources.source_api
            and prices.symbol = changed.symbol
            and prices.interval = changed.interval
            and prices."timestamp" >= changed.changed_from
        offset 0
    ) as range_rows

),

-- The stored candles right before each changed range: previous closes for the returns and the
-- gap, and the returns of the outlier window.
context as (

    select
        stored.symbol,
        stored.interval,
        stored."timestamp",
        stored.close,
        true as is_context
    from changed
    cross join lateral (
        select this_model.symbol, this_model.interval, this_model."timestamp", this_model.close
        from {{ this }} as this_model
        where this_model.symbol = changed.symbol
            and this_model.interval = changed.interval
            and this_model."timestamp" < changed.changed_from
        order by this_model."timestamp" desc
        limit {{ outlier_window + 1 }}
    ) as stored

),

{% else %}

candidates as (

    select * from prices

),

{% endif %}

ranked as (

    select
        *,
        row_number() over same_candle as preference,
        count(*) over candle_sources as source_count,
        max(_ingested_at) over candle_sources as _last_ingested_at
    from candidates
    window
        candle_sources as (partition by symbol, interval, "timestamp"),
        same_candle as (
            partition by symbol, interval, "timestamp"
            order by source_rank, _ingested_at desc, source_api
        )

),

chosen as (

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
        source_count::integer as source_count,
        _batch_id,
        _ingested_at,
        _last_ingested_at
    from ranked
    where preference = 1

),

series as (

    select
        symbol,
        interval,
        "timestamp",
        close,
        false as is_context
    from chosen
    {% if is_incremental() %}
    union all
    select * from context
    {% endif %}

),

with_previous as (

    select
        symbol,
        interval,
        "timestamp",
        close,
        is_context,
        lag(close) over by_time as previous_close,
        lag("timestamp") over by_time as previous_timestamp
    from series
    window by_time as (partition by symbol, interval order by "timestamp")

),

with_returns as (

    select
        *,
        -- returns only between consecutive candles: null after a gap (macros/returns.sql)
        {{ log_return('close', 'previous_close', follows_without_gap('"timestamp"', 'previous_timestamp')) }} as log_return,
        {{ simple_return('close', 'previous_close', follows_without_gap('"timestamp"', 'previous_timestamp')) }} as pct_change,
        coalesce(
            round(
                extract(epoch from "timestamp" - previous_timestamp) / {{ interval_seconds('interval') }}
            )::integer - 1,
            0
        ) as gap_candles
    from with_previous

),

with_outlier_window as (

    select
        *,
        array_agg(log_return) filter (where log_return is not null) over previous_returns
            as window_returns
    from with_returns
    window previous_returns as (
        partition by symbol, interval order by "timestamp"
        rows between {{ outlier_window }} preceding and 1 preceding
    )

),

flagged as (

    select
        symbol,
        interval,
        "timestamp",
        log_return,
        pct_change,
        gap_candles,
        previous_timestamp,
        coalesce(
            cardinality(window_returns) = {{ outlier_window }}
            and silver.robust_deviation(log_return, window_returns) > {{ outlier_k }},
            false
        ) as is_outlier
    from with_outlier_window
    where not is_context

),

-- Candles right after a candle that was corrected or deleted in bronze (or the corrected candle
-- itself): their values changed, so they carry the change's time in _last_ingested_at.
change_marks as (

    select symbol, interval, "timestamp", changed_at
    from {{ ref('stg_bronze__price_changes') }}

),

touched as (

    select
        flagged.symbol,
        flagged.interval,
        flagged."timestamp",
        max(marks.changed_at) as changed_at
    from flagged
    inner join change_marks as marks
        on marks.symbol = flagged.symbol
        and marks.interval = flagged.interval
        and marks."timestamp" <= flagged."timestamp"
        and (flagged.previous_timestamp is null or marks."timestamp" > flagged.previous_timestamp)
    group by flagged.symbol, flagged.interval, flagged."timestamp"

),

final as (

    select
        chosen.symbol,
        chosen.interval,
        chosen."timestamp",
        chosen.open,
        chosen.high,
        chosen.low,
        chosen.close,
        chosen.volume,
        chosen.quote_volume,
        chosen.quote_currency,
        chosen.source_api,
        chosen.source_count,
        flagged.log_return,
        flagged.pct_change,
        flagged.is_outlier,
        flagged.gap_candles,
        flagged.gap_candles > 0 as has_gap,
        chosen._batch_id,
        chosen._ingested_at,
        greatest(chosen._last_ingested_at, touched.changed_at) as _last_ingested_at,
        {{ built_at() }} as _built_at
    from chosen
    inner join flagged
        on chosen.symbol = flagged.symbol
        and chosen.interval = flagged.interval
        and chosen."timestamp" = flagged."timestamp"
    left join touched
        on chosen.symbol = touched.symbol
        and chosen.interval = touched.interval
        and chosen."timestamp" = touched."timestamp"

)

select * from final
