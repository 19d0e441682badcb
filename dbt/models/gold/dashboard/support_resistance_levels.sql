{#-
    Support and resistance levels per token and interval, detected from swing points so the
    technical-analysis page draws them without computing anything.

    1. Window: the candles of the last `support_resistance_lookback_days` days of each series
       (per interval; default 1d: 365, 4h: 120, 1h: 60, 15m: 14), ending at its newest candle.
    2. Swing points: a candle is a swing high when its high is above the highs of the `span`
       candles before it and not below those of the `span` candles after it (a fractal pivot;
       span = var support_resistance_pivot_span, 5); swing lows mirror it on lows. The strict
       side keeps a flat top from counting twice. The last `span` candles cannot be confirmed yet.
    3. Tolerance: var support_resistance_tolerance_atr (0.5) x ATR(14) at the newest candle (the
       simple mean of the last 14 true ranges): a band that widens with volatility and with the
       interval, where a fixed percentage would merge everything on 1d and nothing on 15m.
    4. Levels: swing prices sorted by price are cut wherever the next one is more than the
       tolerance above the previous (single linkage); a group of at least
       var support_resistance_min_touches (2) swing points is a level at their mean price.
    5. Kind: below the newest close = support, otherwise resistance; rank_from_price 1 is the
       nearest level on its side.
    Gaps are not filled: a pivot's neighbours are the candles that exist.
-#}
{{ config(materialized='table') }}

{%- set lookback_days = var('support_resistance_lookback_days', {'1d': 365, '4h': 120, '1h': 60, '15m': 14}) %}
{%- set span = var('support_resistance_pivot_span', 5) | int %}
{%- set tolerance_atr = var('support_resistance_tolerance_atr', 0.5) %}
{%- set min_touches = var('support_resistance_min_touches', 2) | int %}

with

lookback as (

    select interval, days
    from (values
        {%- for interval, days in lookback_days.items() %}
        ('{{ interval }}', {{ days | int }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as configured (interval, days)

),

-- Everything below reads silver through its (symbol, interval, timestamp) index, so the cost
-- follows the lookback windows, not the years of history before them: the symbols by a walk of
-- the index, each series' newest candle by one probe, its window by one range scan (`offset 0`
-- keeps each a look-up per series; flattened, the planner scanned all of silver).
symbols as (

    {{ distinct_leading_values(ref('crypto_prices_cleaned'), 'symbol') }}

),

series_end as (

    select symbols.symbol, lookback.interval, lookback.days, newest.last_candle_at
    from symbols
    cross join lookback
    cross join lateral (
        select max(candles."timestamp") as last_candle_at
        from {{ ref('crypto_prices_cleaned') }} as candles
        where candles.symbol = symbols.symbol
            and candles.interval = lookback.interval
    ) as newest
    where newest.last_candle_at is not null

),

windowed as (

    select
        candles.symbol,
        candles.interval,
        candles."timestamp",
        candles.high,
        candles.low,
        candles.close,
        series_end.last_candle_at
    from series_end
    cross join lateral (
        select window_candles.*
        from {{ ref('crypto_prices_cleaned') }} as window_candles
        where window_candles.symbol = series_end.symbol
            and window_candles.interval = series_end.interval
            and window_candles."timestamp"
                > series_end.last_candle_at - series_end.days * interval '1 day'
        offset 0
    ) as candles

),

neighbours as (

    select
        windowed.*,
        lag(close) over by_time as previous_close,
        max(high) over before_candle as high_before,
        max(high) over after_candle as high_after,
        min(low) over before_candle as low_before,
        min(low) over after_candle as low_after,
        count(*) over before_candle as candles_before,
        count(*) over after_candle as candles_after,
        row_number() over newest_first as candles_from_end
    from windowed
    window
        by_time as (partition by symbol, interval order by "timestamp"),
        before_candle as (
            partition by symbol, interval order by "timestamp"
            rows between {{ span }} preceding and 1 preceding
        ),
        after_candle as (
            partition by symbol, interval order by "timestamp"
            rows between 1 following and {{ span }} following
        ),
        newest_first as (partition by symbol, interval order by "timestamp" desc)

),

series as (

    -- one row per series: its newest candle and ATR(14). Kept apart (and small) so joining the
    -- levels to it never rescans the windowed candles.
    select
        symbol,
        interval,
        max("timestamp") as last_candle_at,
        max(close) filter (where candles_from_end = 1) as last_close,
        avg(
            greatest(
                high - low,
                abs(high - coalesce(previous_close, close)),
                abs(low - coalesce(previous_close, close))
            )
        ) filter (where candles_from_end <= 14) as atr_14
    from neighbours
    group by symbol, interval

),

swing_points as (

    select symbol, interval, "timestamp", high as price, 'high' as swing
    from neighbours
    where candles_before = {{ span }} and candles_after = {{ span }}
        and high > high_before and high >= high_after

    union all

    select symbol, interval, "timestamp", low as price, 'low' as swing
    from neighbours
    where candles_before = {{ span }} and candles_after = {{ span }}
        and low < low_before and low <= low_after

),

steps as (

    select
        swing_points.*,
        series.atr_14,
        {{ tolerance_atr }} * series.atr_14 as tolerance,
        swing_points.price - lag(swing_points.price) over by_price as step
    from swing_points
    inner join series
        on swing_points.symbol = series.symbol
        and swing_points.interval = series.interval
    window by_price as (
        partition by swing_points.symbol, swing_points.interval
        order by swing_points.price, swing_points."timestamp"
    )

),

grouped as (

    select
        steps.*,
        sum(case when step is null or step > tolerance then 1 else 0 end) over (
            partition by symbol, interval
            order by price, "timestamp"
            rows between unbounded preceding and current row
        ) as level_number
    from steps

),

levels as (

    select
        symbol,
        interval,
        level_number,
        avg(price) as level_price,
        min(price) as level_low,
        max(price) as level_high,
        count(*) as touches,
        count(*) filter (where swing = 'high') as swing_highs,
        count(*) filter (where swing = 'low') as swing_lows,
        min("timestamp") as first_touch_at,
        max("timestamp") as last_touch_at,
        max(atr_14) as atr_14,
        max(tolerance) as tolerance
    from grouped
    group by symbol, interval, level_number
    having count(*) >= {{ min_touches }}

),

classified as (

    select
        levels.symbol,
        levels.interval,
        case when levels.level_price < series.last_close then 'support' else 'resistance' end
            as kind,
        levels.level_price,
        levels.level_low,
        levels.level_high,
        levels.touches,
        levels.swing_highs,
        levels.swing_lows,
        levels.first_touch_at,
        levels.last_touch_at,
        levels.level_price / series.last_close - 1 as distance,
        series.last_close,
        series.last_candle_at,
        levels.atr_14,
        levels.tolerance
    from levels
    inner join series
        on levels.symbol = series.symbol
        and levels.interval = series.interval

),

final as (

    select
        symbol,
        interval,
        kind,
        row_number() over (
            partition by symbol, interval, kind order by abs(distance), level_price
        ) as rank_from_price,
        level_price,
        level_low,
        level_high,
        touches,
        swing_highs,
        swing_lows,
        first_touch_at,
        last_touch_at,
        distance,
        last_close,
        last_candle_at,
        atr_14,
        tolerance,
        {{ built_at() }} as _built_at
    from classified

)

select * from final
