{#-
    One row per (symbol, UTC day): OHLCV rebuilt from the finest complete interval silver has for
    that day, VWAP, day-over-day returns, 30-day volatility, and the CoinGecko snapshot taken at
    the day's close. See _gold__models.yml for every rule.

    Incremental: a symbol is recomputed from the first day touched by a silver candle or a market
    snapshot ingested after this table's watermark, or holding a bronze candle corrected or
    deleted since (bronze.price_changes; the pre-hook delete_changed_days first removes the
    stored rows from that day on, so a day left without candles leaves gold), with 30 days of
    context before it (29 earlier returns for the volatility window + 1 close for the first
    return), so every recomputed row equals a full refresh. Untouched symbols are not read past
    that filter.

    `_built_at` (start of the dbt invocation that wrote the row) scopes the scheduled builds'
    data tests to rows no passing run has tested (macros/tests/untested_rows.sql).
-#}
{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[
            {'columns': ['symbol', 'date'], 'unique': true},
            {'columns': ['date']},
            {'columns': ['_source_ingested_at']},
            {'columns': ['_built_at']},
        ],
        pre_hook=["{{ delete_changed_days(per_symbol=true) }}"],
        post_hook=["{{ analyze_watermark_columns_once() }}"],
    )
}}

{%- set volatility_days = 30 %}{#- the 30 of volatility_30d -#}

-- bronze's change log, read by the pre-hook and the incremental branch (macros/bronze_changes.sql)
-- depends_on: {{ ref('stg_bronze__price_changes') }}

with

prices as (

    select
        symbol,
        interval,
        "timestamp",
        ("timestamp" at time zone 'UTC')::date as date,
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        quote_currency,
        source_api,
        -- newest ingestion among all sources of the candle: a new lower-ranked row counts too
        _last_ingested_at as _ingested_at
    from {{ ref('crypto_prices_cleaned') }}
    where {{ interval_seconds('interval') }} <= 86400

),

market_snapshots as (

    -- A snapshot at instant T belongs to the day that closes at T or contains it: (D, D+1].
    -- CoinGecko's daily export is stamped 00:00 UTC, i.e. the close of the previous day.
    select
        symbol,
        (("timestamp" - interval '1 microsecond') at time zone 'UTC')::date as date,
        "timestamp",
        source_api,
        price,
        nullif(market_cap, 0) as market_cap,
        nullif(circulating_supply, 0) as circulating_supply,
        _ingested_at
    from {{ ref('stg_bronze__market_data') }}

),

{% if is_incremental() %}

watermark as (

    {{ gold_ingestion_watermark() }}

),

changed_days as (

    -- straight from the relations, so the ingestion-time indexes serve the filter
    select
        changed_prices.symbol,
        (changed_prices."timestamp" at time zone 'UTC')::date as date
    from {{ ref('crypto_prices_cleaned') }} as changed_prices
    cross join watermark
    where changed_prices._last_ingested_at >= watermark.ingested_at

    union all

    select
        changed_snapshots.symbol,
        ((changed_snapshots."timestamp" - interval '1 microsecond') at time zone 'UTC')::date
    from {{ ref('stg_bronze__market_data') }} as changed_snapshots
    cross join watermark
    where changed_snapshots._ingested_at >= watermark.ingested_at

    union all

    -- days of bronze candles corrected or deleted since (a deleted day has no silver row left)
    select changed_candles.symbol, changed_candles.date
    from ({{ changed_candle_days() }}) as changed_candles

),

recompute_from as (

    select symbol, min(date) as from_date
    from changed_days
    group by symbol

),

{% endif %}

scoped_prices as (

    {% if is_incremental() %}
    -- each recomputed symbol's candles, one interval at a time through silver's (symbol,
    -- interval, timestamp) index; `offset 0` keeps the look-up per key (flattened into a join,
    -- the planner guessed a hash join over all of silver, whose cost grows with history)
    select scoped.*
    from recompute_from
    cross join {{ candle_intervals_values() }}
    cross join lateral (
        select prices.*
        from prices
        where prices.symbol = recompute_from.symbol
            and prices.interval = intervals.interval
            and prices."timestamp"
                >= (recompute_from.from_date - {{ volatility_days }})::timestamp at time zone 'UTC'
        offset 0
    ) as scoped
    {% else %}
    select prices.*
    from prices
    {% endif %}

),

interval_coverage as (

    select
        symbol,
        date,
        interval,
        count(*) as candle_count,
        86400 / {{ interval_seconds('interval') }} as expected_candles,
        {{ interval_seconds('interval') }} as interval_seconds
    from scoped_prices
    group by symbol, date, interval

),

chosen_interval as (

    -- The finest interval that covers the whole day; a day no interval covers fully takes its
    -- finest partial interval and is flagged is_complete_day = false.
    select distinct on (symbol, date)
        symbol,
        date,
        interval,
        expected_candles
    from interval_coverage
    order by symbol, date, (candle_count >= expected_candles) desc, interval_seconds

),

daily_ohlcv as (

    select
        scoped_prices.symbol,
        scoped_prices.date,
        chosen_interval.interval as source_interval,
        count(*) as candle_count,
        chosen_interval.expected_candles,
        (array_agg(scoped_prices.open order by scoped_prices."timestamp"))[1] as open,
        max(scoped_prices.high) as high,
        min(scoped_prices.low) as low,
        (array_agg(scoped_prices.close order by scoped_prices."timestamp" desc))[1] as close,
        sum(scoped_prices.volume order by scoped_prices."timestamp") as volume,
        case
            when count(scoped_prices.quote_volume) = count(*)
                then sum(scoped_prices.quote_volume order by scoped_prices."timestamp")
        end as quote_volume,
        sum(
            (scoped_prices.high + scoped_prices.low + scoped_prices.close) / 3
            * scoped_prices.volume
            order by scoped_prices."timestamp"
        ) as typical_price_volume,
        string_agg(distinct scoped_prices.quote_currency, ',' order by scoped_prices.quote_currency)
            as quote_currency,
        string_agg(distinct scoped_prices.source_api, ',' order by scoped_prices.source_api)
            as source_api,
        max(scoped_prices._ingested_at) as candles_ingested_at
    from scoped_prices
    inner join chosen_interval
        on scoped_prices.symbol = chosen_interval.symbol
        and scoped_prices.date = chosen_interval.date
        and scoped_prices.interval = chosen_interval.interval
    group by
        scoped_prices.symbol,
        scoped_prices.date,
        chosen_interval.interval,
        chosen_interval.expected_candles

),

with_previous as (

    select
        *,
        lag(date) over by_day as previous_date,
        lag(close) over by_day as previous_close
    from daily_ohlcv
    window by_day as (partition by symbol order by date)

),

with_returns as (

    -- Returns only between consecutive days: across a missing day they would silently span two.
    select
        *,
        case when previous_date = date - 1 then close / previous_close - 1 end as daily_return,
        case when previous_date = date - 1 then ln(close / previous_close) end as log_return
    from with_previous

),

with_volatility as (

    select
        *,
        case
            when count(log_return) over trailing_window = {{ volatility_days }}
                then stddev_samp(log_return) over trailing_window * sqrt(365.0)
        end as volatility_30d
    from with_returns
    window trailing_window as (
        partition by symbol
        order by date
        range between interval '{{ volatility_days - 1 }} days' preceding and current row
    )

),

market_at_close as (

    -- The newest snapshot of the day, CoinGecko before any other market source.
    select distinct on (symbol, date)
        symbol,
        date,
        "timestamp" as market_data_at,
        source_api as market_source_api,
        price as market_price,
        market_cap,
        circulating_supply,
        _ingested_at
    from market_snapshots
    {% if is_incremental() %}
    where exists (
        select 1
        from recompute_from
        where recompute_from.symbol = market_snapshots.symbol
            and market_snapshots."timestamp"
                > recompute_from.from_date::timestamp at time zone 'UTC'
    )
    {% endif %}
    order by symbol, date, (source_api = 'coingecko') desc, "timestamp" desc, source_api

),

final as (

    select
        with_volatility.symbol,
        with_volatility.date,
        with_volatility.source_interval,
        with_volatility.candle_count,
        with_volatility.expected_candles,
        with_volatility.candle_count >= with_volatility.expected_candles as is_complete_day,
        with_volatility.open,
        with_volatility.high,
        with_volatility.low,
        with_volatility.close,
        with_volatility.volume,
        with_volatility.quote_volume,
        with_volatility.typical_price_volume / nullif(with_volatility.volume, 0) as vwap,
        with_volatility.quote_currency,
        with_volatility.source_api,
        with_volatility.previous_date,
        with_volatility.daily_return,
        with_volatility.log_return,
        with_volatility.volatility_30d,
        market_at_close.market_cap,
        market_at_close.circulating_supply,
        market_at_close.market_price,
        market_at_close.market_source_api,
        market_at_close.market_data_at,
        case
            when market_at_close.market_data_at = (with_volatility.date + 1)::timestamp at time zone 'UTC'
                and with_volatility.candle_count >= with_volatility.expected_candles
                then (market_at_close.market_price - with_volatility.close) * 10000
                    / with_volatility.close
        end as market_price_deviation_bp,
        greatest(with_volatility.candles_ingested_at, market_at_close._ingested_at)
            as _source_ingested_at,
        {{ built_at() }} as _built_at
    from with_volatility
    left join market_at_close
        on with_volatility.symbol = market_at_close.symbol
        and with_volatility.date = market_at_close.date
    {% if is_incremental() %}
    inner join recompute_from
        on with_volatility.symbol = recompute_from.symbol
        and with_volatility.date >= recompute_from.from_date
    {% endif %}

)

select * from final
