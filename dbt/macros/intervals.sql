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
