{#-
    Technical indicators as window expressions over one (symbol, interval) series, matching the
    `ta` library (0.11) conventions, which tests/dbt/test_indicators_reference.py checks:
    - simple windows are null until the window is full (pandas min_periods = window);
    - EMAs are pandas ewm(adjust=False) seeded with the first value, null for the first
      span - 1 candles (min_periods = span); Wilder smoothing is the same with alpha = 1/n;
    - standard deviations for Bollinger bands are population (ddof = 0).
-#}

{%- macro _trailing_window(periods, partition_by='symbol, interval', order_by='"timestamp"') -%}
    partition by {{ partition_by }} order by {{ order_by }}
    rows between {{ periods - 1 }} preceding and current row
{%- endmacro %}

{%- macro _running_window(partition_by='symbol, interval', order_by='"timestamp"') -%}
    partition by {{ partition_by }} order by {{ order_by }}
    rows between unbounded preceding and current row
{%- endmacro %}

{#- Mean of the last `periods` values (current included); null until there are `periods`. -#}
{% macro rolling_mean(column, periods, partition_by='symbol, interval', order_by='"timestamp"') -%}
    (case
        when count({{ column }}) over ({{ _trailing_window(periods, partition_by, order_by) }}) = {{ periods }}
        then avg({{ column }}) over ({{ _trailing_window(periods, partition_by, order_by) }})
    end)
{%- endmacro %}

{#- Population standard deviation of the last `periods` values (Bollinger's convention). -#}
{% macro rolling_stddev_pop(column, periods, partition_by='symbol, interval', order_by='"timestamp"') -%}
    (case
        when count({{ column }}) over ({{ _trailing_window(periods, partition_by, order_by) }}) = {{ periods }}
        then stddev_pop({{ column }}) over ({{ _trailing_window(periods, partition_by, order_by) }})
    end)
{%- endmacro %}

{#- The exponential-moving-average recursion state (never null once a value was seen), through
    the silver.ema aggregate: alpha = 2 / (span + 1). `seed` continues a stored state. -#}
{% macro ema_state(column, span, seed='null', partition_by='symbol, interval', order_by='"timestamp"') -%}
    silver.ema({{ column }}, 2::double precision / ({{ span }} + 1), ({{ seed }})::double precision)
        over ({{ _running_window(partition_by, order_by) }})
{%- endmacro %}

{#- Wilder's smoothing (RSI, ATR): an EMA with alpha = 1 / periods. -#}
{% macro wilder_state(column, periods, seed='null', partition_by='symbol, interval', order_by='"timestamp"') -%}
    silver.ema({{ column }}, 1::double precision / {{ periods }}, ({{ seed }})::double precision)
        over ({{ _running_window(partition_by, order_by) }})
{%- endmacro %}

{#- A state published only once `candle_number` reaches the warm-up length. -#}
{% macro after_warm_up(value, candle_number, warm_up) -%}
    (case when {{ candle_number }} >= {{ warm_up }} then {{ value }} end)
{%- endmacro %}

{#- RSI from Wilder-smoothed average gain and loss; 100 when there was no loss (as `ta`). -#}
{% macro rsi(average_gain, average_loss) -%}
    (case
        when {{ average_loss }} = 0 then 100::double precision
        else 100 - 100 / (1 + {{ average_gain }} / {{ average_loss }})
    end)
{%- endmacro %}

{#- Bollinger %b: where the close sits in the band (0 = lower, 1 = upper); null for a flat band. -#}
{% macro bollinger_percent_b(price, upper, lower) -%}
    (case when {{ upper }} <> {{ lower }} then ({{ price }} - {{ lower }}) / ({{ upper }} - {{ lower }}) end)
{%- endmacro %}

{#- Bollinger bandwidth as a fraction of the middle band ((upper - lower) / middle).
    `ta` and StockCharts publish it x 100 (percent). -#}
{% macro bollinger_bandwidth(upper, lower, middle) -%}
    (case when {{ middle }} <> 0 then ({{ upper }} - {{ lower }}) / {{ middle }} end)
{%- endmacro %}
