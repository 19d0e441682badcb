{#- Rank of a source_api under var('source_precedence') (1 = preferred). Values not in the list
    are taken to be other ccxt exchange ids and rank right after 'binance' (x.5); a list without
    'binance' puts them last. -#}
{% macro source_rank(source_column) -%}
    {%- set precedence = var('source_precedence') -%}
    {%- set binance_position = (precedence.index('binance') + 1) if 'binance' in precedence else precedence | length -%}
    (case {{ source_column }}
        {%- for source in precedence %}
        when '{{ source }}' then {{ loop.index }}.0
        {%- endfor %}
        else {{ binance_position }}.5
    end)
{%- endmacro %}
