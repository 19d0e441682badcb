{#-
    30-day rolling Pearson correlation of daily log returns over time, for every token against
    each anchor of var gold_rolling_correlation_anchors (default BTC and ETH): the pairs that
    answer "how much does this token follow the market", at ~2 × 37 × 365 rows a year instead of
    the 703 pairs × 365 of the full matrix (which correlation_matrix gives for the latest day).

    Incremental: dates from the first day of daily_crypto_metrics ingested after this table's
    watermark, or of a bronze candle corrected or deleted since (gold_recompute_from), are
    recomputed, reading 29 days of returns before it; the window is a date range, so every
    recomputed row sees exactly the rows a full refresh sees. The pre-hook delete_changed_days
    first removes the stored rows from a changed candle's day on, so a pair-day whose window a
    deletion left short of observations goes too.

    `_built_at` (start of the dbt invocation that wrote the row) scopes the scheduled builds'
    data tests to rows no passing run has tested (macros/tests/untested_rows.sql).
-#}
{{
    config(
        materialized='incremental',
        unique_key=['date', 'symbol_a', 'symbol_b'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[
            {'columns': ['symbol_a', 'symbol_b', 'date'], 'unique': true},
            {'columns': ['date']},
            {'columns': ['_source_ingested_at']},
            {'columns': ['_built_at']},
        ],
        pre_hook=["{{ delete_changed_days() }}"],
        post_hook=["{{ analyze_watermark_columns_once() }}"],
    )
}}

{%- set anchors = var('gold_rolling_correlation_anchors', ['BTC', 'ETH']) %}
{%- set window_days = 30 %}{#- the 30 of correlation_30d -#}
{%- set min_coverage = var('gold_correlation_min_coverage', 0.8) %}

-- bronze's change log, read by the pre-hook and the incremental branch (macros/bronze_changes.sql)
-- depends_on: {{ ref('stg_bronze__price_changes') }}

with

daily as (

    select symbol, date, log_return, _source_ingested_at
    from {{ ref('daily_crypto_metrics') }}

),

anchors as (

    select symbol
    from unnest(array[{% for a in anchors %}'{{ a }}'{{ ', ' if not loop.last }}{% endfor %}]::text[])
        as anchors (symbol)

),

{% if is_incremental() %}

watermark as (

    {{ gold_ingestion_watermark() }}

),

recompute_from as (

    {{ gold_recompute_from('daily') }}

),

{% endif %}

scoped_returns as (

    select daily.*
    from daily
    {% if is_incremental() %}
    cross join recompute_from
    where daily.date >= recompute_from.from_date - {{ window_days - 1 }}
    {% endif %}

),

pair_returns as (

    select
        a.symbol as symbol_a,
        b.symbol as symbol_b,
        a.date,
        a.log_return as return_a,
        b.log_return as return_b,
        greatest(a._source_ingested_at, b._source_ingested_at) as _source_ingested_at
    from scoped_returns as a
    inner join anchors
        on a.symbol = anchors.symbol
    inner join scoped_returns as b
        on a.date = b.date
        and a.symbol <> b.symbol
    -- one row per unordered pair when both tokens are anchors
    left join anchors as b_anchor
        on b.symbol = b_anchor.symbol
    where a.log_return is not null
        and b.log_return is not null
        and (b_anchor.symbol is null or a.symbol < b.symbol)

),

rolling as (

    select
        symbol_a,
        symbol_b,
        date,
        corr(return_a, return_b) over trailing_window as correlation,
        count(*) over trailing_window as n_observations,
        _source_ingested_at
    from pair_returns
    window trailing_window as (
        partition by symbol_a, symbol_b
        order by date
        range between interval '{{ window_days - 1 }} days' preceding and current row
    )

),

final as (

    select
        rolling.date,
        rolling.symbol_a,
        rolling.symbol_b,
        greatest(-1.0, least(1.0, rolling.correlation)) as correlation_30d,
        rolling.n_observations,
        rolling._source_ingested_at,
        {{ built_at() }} as _built_at
    from rolling
    {% if is_incremental() %}
    cross join recompute_from
    {% endif %}
    where rolling.n_observations >= ceil({{ window_days }} * {{ min_coverage }})
        and rolling.correlation is not null
        {% if is_incremental() %}
        and rolling.date >= recompute_from.from_date
        {% endif %}

)

select * from final
