{#- The interval vocabulary (crypto_analytics.intervals), finest first: a model that reads a
    symbol's candles one interval at a time through silver's (symbol, interval, timestamp)
    index lists them from here. -#}
{% macro candle_intervals() -%}
    {{ return(['1m', '5m', '15m', '30m', '1h', '4h', '1d']) }}
{%- endmacro %}

{#- The intervals as a one-column relation `intervals (interval)`. -#}
{% macro candle_intervals_values() -%}
    (values {% for interval in candle_intervals() %}('{{ interval }}'){{ ', ' if not loop.last }}{% endfor %}) as intervals (interval)
{%- endmacro %}

{#- Candle length in seconds for an interval column (the vocabulary of crypto_analytics.intervals). -#}
{% macro interval_seconds(interval_column) -%}
    (case {{ interval_column }}
        when '1m' then 60
        when '5m' then 300
        when '15m' then 900
        when '30m' then 1800
        when '1h' then 3600
        when '4h' then 14400
        when '1d' then 86400
    end)
{%- endmacro %}

{#- Candles per year, for annualising: crypto trades every day, so 365 days (1d: 365, 1h: 8760,
    15m: 35040). -#}
{% macro periods_per_year(interval_column) -%}
    (365.0 * 86400 / {{ interval_seconds(interval_column) }})
{%- endmacro %}
