{#- Returns between a price and the previous one; null when either is missing or not positive
    (a non-positive price is bad data: the accepted_range tests on prices report it). -#}
{% macro log_return(price, previous_price) -%}
    (case when {{ price }} > 0 and {{ previous_price }} > 0 then ln({{ price }} / {{ previous_price }}) end)
{%- endmacro %}

{% macro simple_return(price, previous_price) -%}
    (case when {{ previous_price }} > 0 then {{ price }} / {{ previous_price }} - 1 end)
{%- endmacro %}

{#- Annualised volatility: sample standard deviation (n - 1, as pandas' rolling std) of the
    last `periods` returns, the current one included, times sqrt(candles per year). Null until
    `periods` returns exist: a shorter window would be a different, noisier statistic. -#}
{% macro annualised_volatility(returns, periods, interval_column='interval', partition_by='symbol, interval', order_by='"timestamp"') -%}
    (case
        when count({{ returns }}) over ({{ _trailing_window(periods, partition_by, order_by) }}) = {{ periods }}
        then stddev_samp({{ returns }}) over ({{ _trailing_window(periods, partition_by, order_by) }})
            * sqrt({{ periods_per_year(interval_column) }})
    end)
{%- endmacro %}
