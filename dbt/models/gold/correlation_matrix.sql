{#-
    Pearson correlation of daily log returns for every pair of tokens, over the 30/90/365 days
    ending at the latest day in daily_crypto_metrics, in long format (both orders of each pair
    plus a diagonal of 1). A pair is kept when the two tokens share enough days with a return
    (var gold_correlation_min_coverage × window) and both vary; otherwise the correlation is not
    a measurement and the pair is left out rather than shown as 0 or null.
-#}
{{
    config(
        materialized='table',
        indexes=[{'columns': ['symbol_a', 'symbol_b', 'window_days'], 'unique': true}],
    )
}}

{%- set windows = var('gold_correlation_windows', [30, 90, 365]) %}
{%- set min_coverage = var('gold_correlation_min_coverage', 0.8) %}

with

latest as (

    select max(date) as latest_date
    from {{ ref('daily_crypto_metrics') }}

),

daily_returns as (

    select daily_crypto_metrics.symbol, daily_crypto_metrics.date, daily_crypto_metrics.log_return
    from {{ ref('daily_crypto_metrics') }} as daily_crypto_metrics
    cross join latest
    where daily_crypto_metrics.log_return is not null
        and daily_crypto_metrics.date > latest.latest_date - {{ windows | max }}

),

windows as (

    select
        window_days,
        ceil(window_days * {{ min_coverage }})::integer as min_observations
    from unnest(array[{{ windows | join(', ') }}]) as windows (window_days)

),

calendar as (

    select
        windows.window_days,
        windows.min_observations,
        calendar_day::date as date
    from windows
    cross join latest
    cross join lateral generate_series(
        latest.latest_date - windows.window_days + 1, latest.latest_date, interval '1 day'
    ) as calendar_day

),

window_symbols as (

    select distinct symbol
    from daily_returns

),

return_series as (

    -- one array per (window, token), one slot per calendar day (null on days without a
    -- return), so two tokens' arrays line up day by day
    select
        calendar.window_days,
        calendar.min_observations,
        window_symbols.symbol,
        array_agg(daily_returns.log_return order by calendar.date) as log_returns,
        count(daily_returns.log_return) as n_returns
    from calendar
    cross join window_symbols
    left join daily_returns
        on window_symbols.symbol = daily_returns.symbol
        and calendar.date = daily_returns.date
    group by calendar.window_days, calendar.min_observations, window_symbols.symbol

),

pairs as (

    -- corr() and regr_count() skip days where either return is null: common days only
    select
        a.window_days,
        a.min_observations,
        a.symbol as symbol_a,
        b.symbol as symbol_b,
        pair.n_observations,
        pair.correlation
    from return_series as a
    inner join return_series as b
        on a.window_days = b.window_days
        and a.symbol < b.symbol
    cross join lateral (
        select
            regr_count(day_returns.return_b, day_returns.return_a) as n_observations,
            corr(day_returns.return_a, day_returns.return_b order by day_returns.day_number)
                as correlation
        from unnest(a.log_returns, b.log_returns) with ordinality
            as day_returns (return_a, return_b, day_number)
    ) as pair

),

measured_pairs as (

    -- corr() can land one ulp outside [-1, 1] for near-collinear series: clamp the rounding.
    select
        window_days,
        symbol_a,
        symbol_b,
        n_observations,
        greatest(-1.0, least(1.0, correlation)) as correlation
    from pairs
    where n_observations >= min_observations
        and correlation is not null

),

diagonal as (

    select
        window_days,
        symbol as symbol_a,
        symbol as symbol_b,
        n_returns as n_observations,
        1.0::double precision as correlation
    from return_series
    where n_returns >= min_observations
        and (select var_samp(r) from unnest(log_returns) as r) > 0

),

matrix as (

    select window_days, symbol_a, symbol_b, n_observations, correlation
    from measured_pairs

    union all

    select window_days, symbol_b as symbol_a, symbol_a as symbol_b, n_observations, correlation
    from measured_pairs

    union all

    select window_days, symbol_a, symbol_b, n_observations, correlation
    from diagonal

),

final as (

    select
        matrix.symbol_a,
        matrix.symbol_b,
        matrix.window_days,
        matrix.correlation,
        matrix.n_observations,
        latest.latest_date as window_end_date
    from matrix
    cross join latest

)

select * from final
