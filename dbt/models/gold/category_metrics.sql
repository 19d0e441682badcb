{#-
    A chain-linked, market-cap-weighted index per category of the token universe: base 100 on the
    category's first day in daily_crypto_metrics, then each day's index return is the average of
    its constituents' daily returns weighted by their market cap at the start of the day (the
    CoinGecko snapshot at the previous day's close). Chain-linking lets tokens join (listing) or
    leave (delisting, gaps) without a jump in the level. See _gold__models.yml for the fallback
    when market caps are missing.

    Incremental: dates from the first day of daily_crypto_metrics ingested after this table's
    watermark, or of a bronze candle corrected or deleted since (gold_recompute_from), are
    recomputed, after the pre-hook delete_changed_days removes the stored rows from a changed
    candle's day on (a day left with no constituent return, or a category's first day deleted,
    leaves no stale row). The level continues from the stored cumulative log return of the day
    before (the running sum starts from that exact value, so it adds the same numbers in the
    same order as a full refresh), and the volatility window reads the 29 stored index returns
    before it.
-#}
{{
    config(
        materialized='incremental',
        unique_key=['category', 'date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['category', 'date'], 'unique': true}],
        pre_hook=["{{ delete_changed_days() }}"],
    )
}}

{%- set volatility_days = 30 %}{#- the 30 of volatility_30d -#}

-- bronze's change log, read by the pre-hook and the incremental branch (macros/bronze_changes.sql)
-- depends_on: {{ ref('stg_bronze__price_changes') }}

with

universe as (

    select symbol, category
    from {{ ref('token_universe') }}

),

daily as (

    select
        daily_crypto_metrics.symbol,
        universe.category,
        daily_crypto_metrics.date,
        daily_crypto_metrics.daily_return,
        daily_crypto_metrics.market_cap,
        daily_crypto_metrics._source_ingested_at
    from {{ ref('daily_crypto_metrics') }} as daily_crypto_metrics
    inner join universe
        on daily_crypto_metrics.symbol = universe.symbol

),

category_start as (

    select category, min(date) as base_date
    from daily
    group by category

),

{% if is_incremental() %}

watermark as (

    {{ gold_ingestion_watermark() }}

),

recompute_from as (

    {{ gold_recompute_from('daily') }}

),

{% endif %}

constituent_days as (

    select
        today.category,
        today.date,
        today.symbol,
        today.daily_return,
        -- the market cap at the start of the day is the one snapped at the previous close
        yesterday.market_cap as start_market_cap,
        greatest(today._source_ingested_at, yesterday._source_ingested_at) as _source_ingested_at
    from daily as today
    left join daily as yesterday
        on today.symbol = yesterday.symbol
        and yesterday.date = today.date - 1
    {% if is_incremental() %}
    cross join recompute_from
    where today.date >= recompute_from.from_date
    {% endif %}

),

category_days as (

    select
        category,
        date,
        count(*) as n_tokens,
        count(daily_return) as n_with_return,
        count(*) filter (
            where daily_return is not null and start_market_cap is not null
        ) as n_with_market_cap,
        sum(start_market_cap * daily_return order by symbol) filter (
            where daily_return is not null and start_market_cap is not null
        ) as cap_weighted_return_sum,
        sum(start_market_cap order by symbol) filter (
            where daily_return is not null and start_market_cap is not null
        ) as start_market_cap,
        avg(daily_return order by symbol) filter (
            where daily_return is not null
        ) as equal_weighted_return,
        max(_source_ingested_at) as _source_ingested_at
    from constituent_days
    group by category, date

),

index_days as (

    -- Weighting: market cap over the constituents that have one; when none of the day's
    -- constituents has a market cap, equal weights (flagged in weighting_method).
    select
        category_days.category,
        category_days.date,
        category_days.date = category_start.base_date as is_base_date,
        category_days.n_tokens,
        case
            when category_days.n_with_market_cap > 0 then category_days.n_with_market_cap
            else category_days.n_with_return
        end as n_constituents,
        case
            when category_days.n_with_market_cap > 0
                then category_days.n_with_return - category_days.n_with_market_cap
            else 0
        end as n_excluded_without_market_cap,
        case
            when category_days.date = category_start.base_date then 'base'
            when category_days.n_with_market_cap > 0 then 'market_cap'
            else 'equal'
        end as weighting_method,
        case
            when category_days.n_with_market_cap > 0 then category_days.start_market_cap
        end as start_market_cap,
        case
            when category_days.date = category_start.base_date then null
            when category_days.n_with_market_cap > 0
                then category_days.cap_weighted_return_sum / category_days.start_market_cap
            else category_days.equal_weighted_return
        end as index_return,
        category_days._source_ingested_at
    from category_days
    inner join category_start
        on category_days.category = category_start.category
    -- a day on which no constituent has a day-over-day return adds nothing to the chain
    where category_days.date = category_start.base_date
        or category_days.n_with_return > 0

),

new_rows as (

    select
        *,
        ln(1 + index_return) as index_log_return
    from index_days

),

{% if is_incremental() %}

stored_anchor as (

    -- the last stored day before the recomputed range: the chain continues from its level
    select stored.category, max(stored.date) as anchor_date
    from {{ this }} as stored
    cross join recompute_from
    where stored.date < recompute_from.from_date
    group by stored.category

),

stored_rows as (

    -- the anchor, plus the stored index returns the first recomputed volatility windows cover
    select
        stored.category,
        stored.date,
        stored.index_log_return,
        case
            when stored.date = stored_anchor.anchor_date then stored.cumulative_log_return
        end as chain_term
    from {{ this }} as stored
    cross join recompute_from
    inner join stored_anchor
        on stored.category = stored_anchor.category
    where stored.date < recompute_from.from_date
        and (
            stored.date >= recompute_from.from_date - {{ volatility_days - 1 }}
            or stored.date = stored_anchor.anchor_date
        )

),

{% endif %}

chain as (

    select
        category,
        date,
        index_log_return,
        coalesce(index_log_return, 0.0::double precision) as chain_term,
        false as is_stored
    from new_rows

    {% if is_incremental() %}

    union all

    select category, date, index_log_return, chain_term, true as is_stored
    from stored_rows

    {% endif %}

),

chained as (

    select
        category,
        date,
        is_stored,
        sum(chain_term) over running as cumulative_log_return,
        case
            when count(index_log_return) over trailing_window = {{ volatility_days }}
                then stddev_samp(index_log_return) over trailing_window * sqrt(365.0)
        end as volatility_30d
    from chain
    window
        running as (partition by category order by date rows between unbounded preceding and current row),
        trailing_window as (
            partition by category
            order by date
            range between interval '{{ volatility_days - 1 }} days' preceding and current row
        )

),

final as (

    select
        new_rows.category,
        new_rows.date,
        new_rows.is_base_date,
        new_rows.weighting_method,
        new_rows.n_tokens,
        new_rows.n_constituents,
        new_rows.n_excluded_without_market_cap,
        new_rows.start_market_cap,
        new_rows.index_return,
        new_rows.index_log_return,
        100 * exp(chained.cumulative_log_return) as index_level,
        chained.cumulative_log_return,
        chained.volatility_30d,
        new_rows._source_ingested_at
    from new_rows
    inner join chained
        on new_rows.category = chained.category
        and new_rows.date = chained.date
        and not chained.is_stored

)

select * from final
