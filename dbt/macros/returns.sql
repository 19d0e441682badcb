{#- Returns between a candle and the one right before it.

    One definition for silver and gold: a return exists only between consecutive candles. After
    a gap (`consecutive` false) it is null: a multi-candle move must not enter volatility,
    correlation or a model as one period's return. The gap itself stays flagged (gap_candles,
    has_gap) and the price change across it can be read from the two closes. Null as well when
    either price is missing or not positive (bad data: the price range tests report it). -#}
{% macro log_return(price, previous_price, consecutive='true') -%}
    (case when {{ consecutive }} and {{ price }} > 0 and {{ previous_price }} > 0 then ln({{ price }} / {{ previous_price }}) end)
{%- endmacro %}

{% macro simple_return(price, previous_price, consecutive='true') -%}
    (case when {{ consecutive }} and {{ previous_price }} > 0 then {{ price }} / {{ previous_price }} - 1 end)
{%- endmacro %}

{#- True when `previous_timestamp` is exactly one candle before `timestamp` (no gap between). -#}
{% macro follows_without_gap(timestamp, previous_timestamp, interval_column='interval') -%}
    ({{ previous_timestamp }} = {{ timestamp }} - {{ interval_seconds(interval_column) }} * interval '1 second')
{%- endmacro %}

{#- Annualised volatility: sample standard deviation (n - 1, as pandas' rolling std) of the
    last `periods` returns, the current one included, times sqrt(candles per year). Null until
    `periods` returns exist: a shorter window would be a different, noisier statistic. Since a
    return after a gap is null, a window reaching across a gap is null too, so for daily candles
    this equals gold's calendar-day window (daily_crypto_metrics.volatility_30d). -#}
{% macro annualised_volatility(returns, periods, interval_column='interval', partition_by='symbol, interval', order_by='"timestamp"') -%}
    (case
        when count({{ returns }}) over ({{ _trailing_window(periods, partition_by, order_by) }}) = {{ periods }}
        then stddev_samp({{ returns }}) over ({{ _trailing_window(periods, partition_by, order_by) }})
            * sqrt({{ periods_per_year(interval_column) }})
    end)
{%- endmacro %}
