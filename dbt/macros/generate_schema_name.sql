{#- Schemas are exactly the layer names (`silver`, `gold`), not dbt's `<target>_<custom>`:
    the platform, Airflow assets and the dashboard address them by these fixed names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
